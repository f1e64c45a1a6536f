#!/usr/bin/env bash
# bench/compare.sh: flowguard against DuckDB and awk on the seed query and on
# the other common query shapes.
#
# Generates RECORDS synthetic flow log records (v2 text, and the same records
# as gzip with S3's header line), then runs the seed query
#
#   filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc
#
# on both files, and the shapes of SHAPES on the plain file:
#
#   pairs-top  stats sum(bytes) as b by srcAddr, dstAddr | sort b desc | limit 10
#   pairs-all  stats sum(bytes) as b by srcAddr, dstAddr
#   parse      parse @message /^\S+ \S+ (?<eni>\S+) \S+ \S+ \S+ (?<port>\d+) / | stats count() as n by port
#   bin5m      stats count() as n, sum(bytes) as b by bin(5m) as t
#
# with flowguard, DuckDB (npm @duckdb/node-api, driven by
# bench/duckdb/query.mjs) and mawk (gawk too when installed, for the seed
# query), checks that every tool gives the same answer, and prints the median
# wall-clock time of each and its ratio to flowguard's. See bench/README.md.
#
#   bash bench/compare.sh                    # 10 million records
#   RECORDS=200000 bash bench/compare.sh     # quick run
#
# Environment: RECORDS (10000000), SEED (1), RUNS (3 rounds of every command),
# SHAPES (the shapes to run besides the seed query; "" for the seed query only),
# BENCH_DIR (work directory; default a fresh temporary directory, removed at
# the end unless KEEP=1; a given BENCH_DIR is kept and its generated files
# reused), FLOWGUARD (a flowguard binary to use instead of building
# ./cmd/flowguard), STRICT=1 (exit 3 when a performance target is missed),
# PROFILE=1 (print CPU profiles of flowguard's seed query runs).
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
RECORDS=${RECORDS:-10000000}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
STRICT=${STRICT:-0}
QUERY='filter action="REJECT" | stats count() by srcaddr | filter count >= 2 | sort count desc'
SHAPES=${SHAPES-pairs-top pairs-all parse bin5m}

# The Logs Insights form of each shape (bench/duckdb/query.mjs has the SQL,
# bench/awk/*.awk the awk).
declare -A SHAPE_QUERY=(
	[pairs-top]='stats sum(bytes) as b by srcAddr, dstAddr | sort b desc | limit 10'
	[pairs-all]='stats sum(bytes) as b by srcAddr, dstAddr'
	[parse]='parse @message /^\S+ \S+ (?<eni>\S+) \S+ \S+ \S+ (?<port>\d+) / | stats count() as n by port'
	[bin5m]='stats count() as n, sum(bytes) as b by bin(5m) as t'
)
declare -A SHAPE_AWK=(
	[pairs-top]="pairs.awk|sort -t' ' -k3,3nr | awk 'NR <= 10'"
	[pairs-all]='pairs.awk|cat'
	[parse]='parse.awk|cat'
	[bin5m]='bin5m.awk|cat'
)
for shape in $SHAPES; do
	[[ -n ${SHAPE_QUERY[$shape]:-} ]] || { printf 'compare.sh: unknown shape %s (%s)\n' "$shape" "${!SHAPE_QUERY[*]}" >&2; exit 1; }
done

if [[ -n ${BENCH_DIR:-} ]]; then
	WORK=$BENCH_DIR
	mkdir -p "$WORK"
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowguard-bench.XXXXXX")
	if [[ ${KEEP:-0} != 1 ]]; then
		trap 'rm -rf "$WORK"' EXIT
	fi
fi
WORK=$(cd "$WORK" && pwd)
OUT=$WORK/out
mkdir -p "$OUT"

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'compare.sh: %s\n' "$*" >&2
	exit 1
}

[[ $RECORDS =~ ^[0-9]+$ && $RECORDS -gt 0 ]] || die "RECORDS=$RECORDS: expected a positive integer"
[[ $RUNS =~ ^[0-9]+$ && $RUNS -gt 0 ]] || die "RUNS=$RUNS: expected a positive integer"

# --- tools ------------------------------------------------------------------

# apt_install PKG... installs Debian packages (as root, or through sudo).
apt_install() {
	local sudo=()
	[[ $(id -u) == 0 ]] || sudo=(sudo)
	log "installing $* with apt-get"
	"${sudo[@]}" apt-get update -qq >&2 || true
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >&2
}

command -v go >/dev/null || die "go is not on PATH"
command -v mawk >/dev/null || apt_install mawk
command -v gzip >/dev/null || apt_install gzip
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	apt_install nodejs npm
fi

if [[ -n ${FLOWGUARD:-} ]]; then
	FG=$FLOWGUARD
	[[ -x $FG ]] || die "FLOWGUARD=$FG is not an executable"
else
	# GOEXPERIMENT=simd turns on the AVX2 structural index of the decoder
	# (internal/flowlog/index_simd.go); SIMD=0 measures the portable build.
	if [[ ${SIMD:-1} == 1 ]]; then
		log "building flowguard (GOEXPERIMENT=simd)"
		(cd "$ROOT" && GOEXPERIMENT=simd go build -o "$WORK/flowguard" ./cmd/flowguard) || die "cannot build ./cmd/flowguard"
	else
		log "building flowguard (portable)"
		(cd "$ROOT" && go build -o "$WORK/flowguard" ./cmd/flowguard) || die "cannot build ./cmd/flowguard"
	fi
	FG=$WORK/flowguard
fi

# DuckDB: the package pinned in bench/duckdb/package.json, installed once
# into bench/duckdb/node_modules (gitignored).
if [[ ! -f $BENCH/duckdb/node_modules/@duckdb/node-api/package.json ]]; then
	log "installing @duckdb/node-api with npm"
	(cd "$BENCH/duckdb" && npm install --no-audit --no-fund --loglevel=error >&2) ||
		die "cannot install @duckdb/node-api (npm install in bench/duckdb)"
fi

GAWK=$(command -v gawk || true)

# Rows without a limit: Logs Insights stops at 10,000 rows, the other tools
# print every group, so ask flowguard for all of them when it has the flag.
FG_ALL=()
if "$FG" query --help 2>&1 | grep -q -- '--max-rows'; then
	FG_ALL=(--max-rows 0)
fi

# --- data -------------------------------------------------------------------

PLAIN=$WORK/flows-$RECORDS-$SEED.log
GZ=$WORK/flows-$RECORDS-$SEED.log.gz
if [[ ! -s $PLAIN ]]; then
	log "generating $RECORDS records (v2 text) into $PLAIN"
	"$FG" gen --records "$RECORDS" --seed "$SEED" --out "$PLAIN.tmp" || die "flowguard gen failed"
	mv "$PLAIN.tmp" "$PLAIN"
fi
if [[ ! -s $GZ ]]; then
	log "generating the same records as gzip with a header line into $GZ"
	"$FG" gen --records "$RECORDS" --seed "$SEED" --gzip --out "$GZ.tmp" || die "flowguard gen --gzip failed"
	mv "$GZ.tmp" "$GZ"
fi
[[ $(head -c 8 "$PLAIN") != version* ]] || die "$PLAIN starts with a header line; expected plain v2 text without one"
[[ $(gzip -dc "$GZ" | head -n 1) == version* ]] || die "$GZ does not start with a header line"

# --- measuring --------------------------------------------------------------

declare -A CMD      # key -> shell command
declare -A LABEL    # key -> "tool|input"
declare -A WALL CPU EXTRA  # key -> space-separated seconds, one per run
declare -A MEDIAN MCPU MEXTRA  # key -> median of the above
KEYS=()

# bench KEY TOOL INPUT CMD adds a measurement: the shell command CMD, whose
# standard output goes to $OUT/KEY.out and standard error to $OUT/KEY.err.
bench() {
	KEYS+=("$1")
	LABEL[$1]="$2|$3"
	CMD[$1]=$4
	WALL[$1]=''
	CPU[$1]=''
	EXTRA[$1]=''
}

# run1 KEY runs the command of KEY once and appends its wall-clock and CPU
# (user + system, children included) seconds. Any failure stops the script.
run1() {
	local key=$1 tf=$OUT/$1.time
	local TIMEFORMAT='%3R %3U %3S'
	# The inner braces keep the report of `time` out of the command's stderr.
	if ! { time { (eval "${CMD[$key]}") >"$OUT/$key.out" 2>"$OUT/$key.err"; }; } 2>"$tf"; then
		cat "$OUT/$key.err" >&2
		die "${LABEL[$key]%%|*} on ${LABEL[$key]#*|} failed: ${CMD[$key]}"
	fi
	local real user sys qs
	read -r real user sys <"$tf"
	WALL[$key]+=" $real"
	CPU[$key]+=" $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.3f", u + s}')"
	qs=$(sed -n 's/^duckdb_query_seconds=//p' "$OUT/$key.err")
	[[ -z $qs ]] || EXTRA[$key]+=" $qs"
}

# median prints the median of its numeric arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

q() { printf '%q' "$1"; }

SEED_AWK=$(q "$BENCH/awk/seed.awk")
DUCK=$(q "$BENCH/duckdb/query.mjs")
P=$(q "$PLAIN")
G=$(q "$GZ")

bench fg_plain "flowguard" plain "$(q "$FG") query ${FG_ALL[*]} --output csv $(q "$QUERY") $P"
bench duck_plain "duckdb" plain "node $DUCK $P"
bench mawk_plain "mawk" plain "mawk -f $SEED_AWK $P | sort -k2,2nr"
if [[ -n $GAWK ]]; then
	bench gawk_plain "gawk" plain "gawk -f $SEED_AWK $P | sort -k2,2nr"
fi
bench fgcount_plain "flowguard stats count()" plain "$(q "$FG") query --output csv 'stats count()' $P"
bench cat_plain "cat (read only)" plain "cat $P >/dev/null"
bench gunzip_gz "gzip -dc (decompress only)" gzip "gzip -dc $G >/dev/null"
bench fgcount_gz "flowguard stats count()" gzip "$(q "$FG") query --output csv 'stats count()' $G"
bench fg_gz "flowguard" gzip "$(q "$FG") query ${FG_ALL[*]} --output csv $(q "$QUERY") $G"
bench duck_gz "duckdb" gzip "node $DUCK --gzip $G"
bench mawk_gz "mawk" gzip "gzip -dc $G | mawk -f $SEED_AWK | sort -k2,2nr"
if [[ -n $GAWK ]]; then
	bench gawk_gz "gawk" gzip "gzip -dc $G | gawk -f $SEED_AWK | sort -k2,2nr"
fi
for shape in $SHAPES; do
	awkfile=${SHAPE_AWK[$shape]%%|*}
	awkpost=${SHAPE_AWK[$shape]#*|}
	bench "fg_$shape" "flowguard $shape" plain "$(q "$FG") query ${FG_ALL[*]} --output csv $(q "${SHAPE_QUERY[$shape]}") $P"
	bench "duck_$shape" "duckdb $shape" plain "node $DUCK --shape $shape $P"
	bench "mawk_$shape" "mawk $shape" plain "mawk -f $(q "$BENCH/awk/$awkfile") $P | $awkpost"
done

log "warming the page cache"
cat "$PLAIN" "$GZ" >/dev/null

# Rounds rather than one tool's runs back to back: a burst of other work on
# the machine then slows one run of several tools, not every run of one.
log "plain text $(du -h "$PLAIN" | cut -f1), gzip $(du -h "$GZ" | cut -f1): $RUNS rounds of ${#KEYS[@]} commands"
for ((round = 1; round <= RUNS; round++)); do
	log "round $round of $RUNS"
	for key in "${KEYS[@]}"; do
		run1 "$key"
	done
done
for key in "${KEYS[@]}"; do
	# shellcheck disable=SC2086 # word splitting of the run lists is meant
	MEDIAN[$key]=$(median ${WALL[$key]})
	# shellcheck disable=SC2086
	MCPU[$key]=$(median ${CPU[$key]})
	# shellcheck disable=SC2086
	[[ -z ${EXTRA[$key]} ]] || MEXTRA[$key]=$(median ${EXTRA[$key]})
	printf '    %-28s %-6s wall:%s s  cpu:%s s%s\n' "${LABEL[$key]%%|*}" "${LABEL[$key]#*|}" \
		"${WALL[$key]}" "${CPU[$key]}" "${EXTRA[$key]:+  query alone:${EXTRA[$key]} s}" >&2
done

# --- correctness ------------------------------------------------------------

# normalize KEY writes the rows of a result as sorted "srcaddr count" lines.
normalize() {
	local key=$1
	case $key in
	fg_*) tail -n +2 "$OUT/$key.out" | tr ',' ' ' ;;
	*) cat "$OUT/$key.out" ;;
	esac | awk 'NF' | sort >"$OUT/$key.rows"
}

log "checking that the answers agree"
fail=0
for input in plain gz; do
	ref=fg_$input
	normalize "$ref"
	[[ $(head -n 1 "$OUT/$ref.out") == 'srcaddr,count()' ]] ||
		{ echo "flowguard ($input): unexpected CSV header: $(head -n 1 "$OUT/$ref.out")" >&2; fail=1; }
	# flowguard's own order: count descending.
	if ! tail -n +2 "$OUT/$ref.out" | awk -F, 'NR > 1 && $2 > prev {exit 1} {prev = $2}'; then
		echo "flowguard ($input): rows are not sorted by count descending" >&2
		fail=1
	fi
	for other in duck mawk gawk; do
		key=${other}_$input
		[[ -f $OUT/$key.out ]] || continue
		normalize "$key"
		if ! cmp -s "$OUT/$ref.rows" "$OUT/$key.rows"; then
			echo "MISMATCH ($input): flowguard has $(wc -l <"$OUT/$ref.rows") rows, $other $(wc -l <"$OUT/$key.rows"); first differences (< flowguard, > $other):" >&2
			diff "$OUT/$ref.rows" "$OUT/$key.rows" | head -n 10 >&2 || true
			fail=1
		fi
	done
done
if ! cmp -s "$OUT/fg_plain.rows" "$OUT/fg_gz.rows"; then
	echo "MISMATCH: the plain and gzip files (same records) give different answers" >&2
	diff "$OUT/fg_plain.rows" "$OUT/fg_gz.rows" | head -n 10 >&2 || true
	fail=1
fi
for key in fgcount_plain fgcount_gz; do
	counted=$(tail -n +2 "$OUT/$key.out" | tr -d '\r')
	if [[ $counted != "$RECORDS" ]]; then
		echo "flowguard 'stats count()' counted $counted records in the ${LABEL[$key]#*|} file, expected $RECORDS" >&2
		fail=1
	fi
done
# The shapes: every tool's rows, as "value value ..." lines, sorted. For
# pairs-top only the sums are compared (groups tied at the tenth place may
# differ from tool to tool), and flowguard's must be in descending order.
shape_rows() {
	local key=$1
	case $key in
	fg_*) tail -n +2 "$OUT/$key.out" | tr ',' ' ' ;;
	*) cat "$OUT/$key.out" ;;
	esac | if [[ $key == *_pairs-top ]]; then awk '{print $3}'; else cat; fi | sort >"$OUT/$key.rows"
}
for shape in $SHAPES; do
	shape_rows "fg_$shape"
	if [[ $shape == pairs-top ]] && ! tail -n +2 "$OUT/fg_$shape.out" | awk -F, 'NR > 1 && $3 > prev {exit 1} {prev = $3}'; then
		echo "flowguard ($shape): rows are not sorted by the sum descending" >&2
		fail=1
	fi
	for other in duck mawk; do
		key=${other}_$shape
		shape_rows "$key"
		if ! cmp -s "$OUT/fg_$shape.rows" "$OUT/$key.rows"; then
			echo "MISMATCH ($shape): flowguard has $(wc -l <"$OUT/fg_$shape.rows") rows, $other $(wc -l <"$OUT/$key.rows"); first differences (< flowguard, > $other):" >&2
			diff "$OUT/fg_$shape.rows" "$OUT/$key.rows" | head -n 10 >&2 || true
			fail=1
		fi
	done
done
if ((fail)); then
	trap - EXIT
	die "the tools disagree; the files and every tool's output are kept in $WORK"
fi
[[ -z $SHAPES ]] || echo "all tools agree on the shapes: $SHAPES" >&2
rows=$(wc -l <"$OUT/fg_plain.rows")
rejects=$(awk '{s += $2} END {print s + 0}' "$OUT/fg_plain.rows")
echo "all tools agree: $rows addresses rejected twice or more ($rejects of their records)" >&2

# --- summary ----------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "inf"}'; }
check() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {ok = (op == ">=") ? v >= t : v <= t; print ok ? "PASS" : "FAIL"}'; }

duck_version=$(sed -n 's/^duckdb_version=//p' "$OUT/duck_plain.err")
echo
echo "flowguard seed-query comparison: $RECORDS records (seed $SEED), median of $RUNS runs; seconds: wall clock of the whole command; cpu s: user + system, all processes"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: flowguard $(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo '?') ($(go env GOVERSION)), duckdb ${duck_version:-?} (node $(node --version)), $(mawk -W version 2>&1 | head -n 1)${GAWK:+, $(gawk --version | head -n 1)}"
echo "files: plain $(du -h "$PLAIN" | cut -f1), gzip $(du -h "$GZ" | cut -f1)"
echo
printf '%-28s %-6s %9s %9s %12s  %s\n' tool input seconds 'cpu s' 'x flowguard' note
for key in "${KEYS[@]}"; do
	IFS='|' read -r tool input <<<"${LABEL[$key]}"
	base=${MEDIAN[fg_plain]}
	[[ $input == plain ]] || base=${MEDIAN[fg_gz]}
	for shape in $SHAPES; do
		[[ $key != *_"$shape" ]] || base=${MEDIAN[fg_$shape]}
	done
	note=
	[[ -z ${MEXTRA[$key]:-} ]] || note="query alone ${MEXTRA[$key]} s (without node start and library load)"
	printf '%-28s %-6s %9.3f %9.3f %12s  %s\n' "$tool" "$input" "${MEDIAN[$key]}" "${MCPU[$key]}" "$(ratio "${MEDIAN[$key]}" "$base")" "$note"
done
echo

d=$(ratio "${MEDIAN[duck_plain]}" "${MEDIAN[fg_plain]}")
m=$(ratio "${MEDIAN[mawk_plain]}" "${MEDIAN[fg_plain]}")
z=$(ratio "${MEDIAN[fg_gz]}" "${MEDIAN[gunzip_gz]}")
zc=$(ratio "${MEDIAN[fgcount_gz]}" "${MEDIAN[gunzip_gz]}")
t1=$(check "$d" '>=' 2)
t2=$(check "$m" '>=' 10)
t3=$(check "$z" '<=' 1.3)
echo "target plain: flowguard >= 2x faster than DuckDB:   ${d}x  $t1"
echo "target plain: flowguard >= 10x faster than mawk:    ${m}x  $t2"
echo "target gzip:  seed query <= 1.3x gzip -dc time:     ${z}x  $t3  (flowguard 'stats count()' alone: ${zc}x)"

# Every shape against DuckDB, in the same rounds: the whole command for
# both, and DuckDB's query alone (without starting node and loading the
# library) against flowguard's whole process, as issue 13 measures.
t4=PASS
if [[ -n $SHAPES ]]; then
	echo
	echo "shapes (plain text): DuckDB time / flowguard time; goal >= 2x, and never below 1x"
	printf '%-10s %10s %10s %10s %10s %12s %12s  %s\n' shape flowguard duckdb 'duck query' mawk 'x (whole)' 'x (query)' verdict
	for shape in seed $SHAPES; do
		fk=fg_$shape dk=duck_$shape mk=mawk_$shape
		[[ $shape != seed ]] || { fk=fg_plain dk=duck_plain mk=mawk_plain; }
		rw=$(ratio "${MEDIAN[$dk]}" "${MEDIAN[$fk]}")
		rq=$(ratio "${MEXTRA[$dk]:-0}" "${MEDIAN[$fk]}")
		v=$(check "$rq" '>=' 2)
		[[ $v == PASS ]] || { [[ $(check "$rq" '>=' 1) == PASS ]] && v="below 2x" || v=SLOWER; t4=FAIL; }
		printf '%-10s %10.3f %10.3f %10.3f %10.3f %12s %12s  %s\n' "$shape" "${MEDIAN[$fk]}" "${MEDIAN[$dk]}" "${MEXTRA[$dk]:-0}" "${MEDIAN[$mk]}" "$rw" "$rq" "$v"
	done
fi

# --- profiles ---------------------------------------------------------------

if [[ ${PROFILE:-0} == 1 ]]; then
	if "$FG" --help 2>&1 | grep -q -- '--cpuprofile'; then
		for input in plain gz; do
			f=$PLAIN
			[[ $input == plain ]] || f=$GZ
			"$FG" query "${FG_ALL[@]}" --output csv --cpuprofile "$OUT/fg_$input.pprof" "$QUERY" "$f" >/dev/null
			echo
			echo "flowguard CPU profile, $input ($OUT/fg_$input.pprof):"
			go tool pprof -top -nodecount=25 "$FG" "$OUT/fg_$input.pprof" 2>/dev/null | sed -n '/^Showing\|flat%/,$p'
		done
	else
		echo "PROFILE=1: this flowguard has no --cpuprofile flag" >&2
	fi
fi

if [[ $STRICT == 1 && ($t1 != PASS || $t2 != PASS || $t3 != PASS || $t4 != PASS) ]]; then
	exit 3
fi
