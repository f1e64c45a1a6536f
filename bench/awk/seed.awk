# seed.awk: flowguard's seed query in awk, for bench/compare.sh.
#
#   filter action="REJECT" | stats count() by srcaddr
#   | filter count >= 2 | sort count desc
#
# Input is VPC flow log text in the default (version 2) format: srcaddr is
# field 4, action field 13. A header line (S3 delivery) has "action" in field
# 13 and is not counted. Prints "srcaddr count" for every address rejected
# twice or more, in no particular order: pipe it through `sort -k2,2nr`.
$13 == "REJECT" { c[$4]++ }
END {
	for (a in c)
		if (c[a] >= 2)
			print a, c[a]
}
