// query.mjs runs the query shapes of bench/compare.sh with DuckDB.
//
//   node query.mjs [--shape NAME] FILE [--gzip] [--threads N]
//
// FILE is VPC flow log text in the default (version 2) format, fields
// separated by single spaces. Plain files have no header line (CloudWatch
// Logs text); with --gzip the file is one gzip stream that starts with S3's
// header line. Each shape is the SQL form of a Logs Insights query that
// bench/compare.sh also gives flowguard and mawk:
//
//   seed       filter action="REJECT" | stats count() by srcaddr
//              | filter count >= 2 | sort count desc
//   pairs-top  stats sum(bytes) as b by srcAddr, dstAddr | sort b desc | limit 10
//   pairs-all  stats sum(bytes) as b by srcAddr, dstAddr
//   parse      parse @message /^\S+ \S+ (?<eni>\S+) \S+ \S+ \S+ (?<port>\d+) /
//              | stats count() as n by port
//   bin5m      stats count() as n, sum(bytes) as b by bin(5m) as t
//
// Rows go to standard output, one a line, values separated by single spaces
// (absent values as the empty string). The time spent in DuckDB on the query
// alone (reading and parsing the file included, loading the library and
// starting node not) goes to standard error as "duckdb_query_seconds=S"; the
// DuckDB version as "duckdb_version=V".
import { DuckDBInstance } from '@duckdb/node-api';

function usage(msg) {
  process.stderr.write(`query.mjs: ${msg}\nusage: node query.mjs [--shape NAME] FILE [--gzip] [--threads N]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let file = '';
let gzip = false;
let threads = 0;
let shape = 'seed';
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--gzip') {
    gzip = true;
  } else if (a === '--threads') {
    threads = Number.parseInt(args[++i] ?? '', 10);
    if (!Number.isInteger(threads) || threads < 1) usage('--threads needs a positive integer');
  } else if (a === '--shape') {
    shape = args[++i] ?? '';
  } else if (a.startsWith('--')) {
    usage(`unknown flag ${a}`);
  } else if (file === '') {
    file = a;
  } else {
    usage('only one FILE');
  }
}
if (file === '') usage('FILE is missing');

// The 14 fields of the default (version 2) format, in order. '-' marks an
// absent value (NODATA and SKIPDATA records), read as NULL.
const columns = [
  ['version', 'INTEGER'],
  ['account_id', 'VARCHAR'],
  ['interface_id', 'VARCHAR'],
  ['srcaddr', 'VARCHAR'],
  ['dstaddr', 'VARCHAR'],
  ['srcport', 'INTEGER'],
  ['dstport', 'INTEGER'],
  ['protocol', 'INTEGER'],
  ['packets', 'UBIGINT'],
  ['bytes', 'UBIGINT'],
  ['start', 'BIGINT'],
  ['end', 'BIGINT'],
  ['action', 'VARCHAR'],
  ['log_status', 'VARCHAR'],
];

const sqlString = (s) => `'${s.replaceAll("'", "''")}'`;
const common = [`quote=''`, `escape=''`, `header=${gzip ? 'true' : 'false'}`, `compression=${gzip ? "'gzip'" : "'none'"}`];
const colSpec = `{${columns.map(([n, t]) => `${sqlString(n)}: ${sqlString(t)}`).join(', ')}}`;
// The records as typed columns.
const flows = `read_csv(${sqlString(file)}, ${[`delim=' '`, `nullstr='-'`, `columns=${colSpec}`, ...common].join(', ')})`;
// The records as whole lines (@message), for the regex shape: a delimiter
// that never occurs in flow logs.
const lines = `read_csv(${sqlString(file)}, ${[`delim='\\x01'`, `columns={'line': 'VARCHAR'}`, ...common].join(', ')})`;

const shapes = {
  seed: `SELECT srcaddr, count(*) AS c FROM ${flows}
    WHERE action = 'REJECT' GROUP BY srcaddr HAVING count(*) >= 2 ORDER BY c DESC`,
  'pairs-top': `SELECT srcaddr, dstaddr, sum(bytes) AS b FROM ${flows}
    GROUP BY srcaddr, dstaddr ORDER BY b DESC NULLS LAST LIMIT 10`,
  'pairs-all': `SELECT srcaddr, dstaddr, sum(bytes) AS b FROM ${flows} GROUP BY srcaddr, dstaddr`,
  parse: `SELECT nullif(regexp_extract(line, '^\\S+ \\S+ (\\S+) \\S+ \\S+ \\S+ (\\d+) ', 2), '') AS port,
    count(*) AS n FROM ${lines} GROUP BY port`,
  // bin(5m) prints as Logs Insights prints @timestamp.
  bin5m: `SELECT strftime(make_timestamp(t * 1000000), '%Y-%m-%d %H:%M:%S.000'), n, b FROM (
      SELECT start - start % 300 AS t, count(*) AS n, sum(bytes) AS b FROM ${flows} GROUP BY t)`,
};
const sql = shapes[shape];
if (!sql) usage(`unknown shape ${shape} (${Object.keys(shapes).join(', ')})`);

const text = (v) => {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object' && typeof v.toString === 'function') return v.toString();
  return String(v);
};

try {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  if (threads > 0) await conn.run(`SET threads TO ${threads}`);
  const version = (await conn.runAndReadAll('SELECT version()')).getRows()[0][0];

  const t0 = process.hrtime.bigint();
  const reader = await conn.runAndReadAll(sql);
  const rows = reader.getRows();
  const t1 = process.hrtime.bigint();

  const out = [];
  for (const r of rows) out.push(`${r.map(text).join(' ')}\n`);
  process.stdout.write(out.join(''));
  process.stderr.write(`duckdb_version=${version}\n`);
  process.stderr.write(`duckdb_query_seconds=${(Number(t1 - t0) / 1e9).toFixed(3)}\n`);
  conn.closeSync();
} catch (err) {
  process.stderr.write(`query.mjs: cannot run the ${shape} query on ${file}: ${err?.message ?? err}\n`);
  process.exit(1);
}
