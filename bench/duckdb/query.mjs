// seed.mjs runs flowguard's seed query with DuckDB, for bench/compare.sh.
//
//   node seed.mjs FILE [--gzip] [--threads N]
//
// FILE is VPC flow log text in the default (version 2) format, fields
// separated by single spaces. Plain files have no header line (CloudWatch
// Logs text); with --gzip the file is one gzip stream that starts with S3's
// header line. The query is the SQL form of the Logs Insights seed query
//
//   filter action="REJECT" | stats count() by srcaddr
//   | filter count >= 2 | sort count desc
//
// Rows go to standard output as "srcaddr count", one a line, count
// descending. The time spent in DuckDB on the query alone (reading and
// parsing the file included, loading the library and starting node not) goes
// to standard error as "duckdb_query_seconds=S"; the DuckDB version as
// "duckdb_version=V".
import { DuckDBInstance } from '@duckdb/node-api';

function usage(msg) {
  process.stderr.write(`seed.mjs: ${msg}\nusage: node seed.mjs FILE [--gzip] [--threads N]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let file = '';
let gzip = false;
let threads = 0;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--gzip') {
    gzip = true;
  } else if (a === '--threads') {
    threads = Number.parseInt(args[++i] ?? '', 10);
    if (!Number.isInteger(threads) || threads < 1) usage('--threads needs a positive integer');
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
const colSpec = `{${columns.map(([n, t]) => `${sqlString(n)}: ${sqlString(t)}`).join(', ')}}`;
const options = [
  `delim=' '`,
  `quote=''`,
  `escape=''`,
  `nullstr='-'`,
  `header=${gzip ? 'true' : 'false'}`,
  `columns=${colSpec}`,
  `compression=${gzip ? "'gzip'" : "'none'"}`,
];
const sql = `SELECT srcaddr, count(*) AS c
FROM read_csv(${sqlString(file)}, ${options.join(', ')})
WHERE action = 'REJECT'
GROUP BY srcaddr
HAVING count(*) >= 2
ORDER BY c DESC`;

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
  for (const [addr, c] of rows) out.push(`${addr} ${c}\n`);
  process.stdout.write(out.join(''));
  process.stderr.write(`duckdb_version=${version}\n`);
  process.stderr.write(`duckdb_query_seconds=${(Number(t1 - t0) / 1e9).toFixed(3)}\n`);
  conn.closeSync();
} catch (err) {
  process.stderr.write(`seed.mjs: cannot run the query on ${file}: ${err?.message ?? err}\n`);
  process.exit(1);
}
