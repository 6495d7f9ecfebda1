/**
 * bench/thrift-peers (issue 14): the project's ExtensionServer against Apache
 * Thrift's C++ and Python servers, all generated from
 * proto/osquery/osquery.thrift and driven by one neutral C++ client (Debian's
 * libthrift, built by setup.sh). Every server serves the same 1000x10 table and
 * a logger; servers are measured alternately (A B A B …) in one run, each
 * scenario by a fresh client process, and the medians of per-round ratios are
 * reported. The raw SQLite floor (one 1 KiB row per transaction, WAL,
 * synchronous=NORMAL) is measured in the same rounds.
 *
 * Servers: `project` (this checkout's dist/), `project_base` (an older build,
 * THRIFT_PEERS_BASE_ROOT, default ../thrift-base/dist when present: "before"),
 * `cpp` (TSimpleServer, TBufferedTransport, TBinaryProtocol), `python`
 * (python3-thrift TSimpleServer, pure-Python TBinaryProtocol), and `bare`
 * (bare-server.ts: node:net answering prebuilt replies with no decoding or
 * handler: the floor of Node's own socket machinery, and for the table the
 * client's own bound). Every spawned server is stopped and reaped, also on
 * failure.
 *
 * Besides the client's figures, every scenario records the server's CPU per
 * call: the CPU time of all its threads (the sum of /proc/<pid>/task/<tid>/schedstat,
 * nanoseconds; /proc/<pid>/stat utime+stime in clock ticks where schedstat is
 * missing) over the scenario, divided by the calls. It depends far less on the
 * machine's load than calls/s.
 *
 * Run: bench/run thrift-peers, or bench/thrift-peers/run.sh. THRIFT_PEERS_ROUNDS (default 5).
 * THRIFT_PEERS_SERVERS / THRIFT_PEERS_SCENARIOS (comma-separated names) run a subset, for
 * experiments; ratios and targets whose servers are missing are left out.
 * THRIFT_PEERS_NAME (default thrift-peers) names the results files, so a variant run
 * (bench/thrift-peers-one-cpu: everything on one CPU) keeps its own. The CPUs the run
 * may use (its affinity, inherited by every server and client) are recorded.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { median, resultsDir, round, writeResult } from '../lib.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench/thrift-peers
const repo = resolve(here, '../../..');
const src = join(repo, 'bench/thrift-peers');
const build = join(src, 'build');
const ROUNDS = Number(process.env.THRIFT_PEERS_ROUNDS ?? 5);
const CLIENT_TIMEOUT_MS = 120_000;

interface Scenario {
  name: string;
  op: 'ping' | 'table' | 'log';
  pattern: 'persistent' | 'percall';
  calls: number;
  threads: number;
}

const ALL_SCENARIOS: Scenario[] = [
  { name: 'ping_persistent', op: 'ping', pattern: 'persistent', calls: 20_000, threads: 1 },
  { name: 'ping_per_call', op: 'ping', pattern: 'percall', calls: 3_000, threads: 1 },
  { name: 'table_persistent', op: 'table', pattern: 'persistent', calls: 100, threads: 1 },
  { name: 'table_per_call', op: 'table', pattern: 'percall', calls: 100, threads: 1 },
  { name: 'log_sequential', op: 'log', pattern: 'persistent', calls: 2_000, threads: 1 },
  { name: 'log_concurrent_64', op: 'log', pattern: 'persistent', calls: 100, threads: 64 },
];
const only = (env: string | undefined) => (env ? new Set(env.split(',').map((x) => x.trim())) : undefined);
const SCENARIO_FILTER = only(process.env.THRIFT_PEERS_SCENARIOS);
const SERVER_FILTER = only(process.env.THRIFT_PEERS_SERVERS);
const SCENARIOS = ALL_SCENARIOS.filter((sc) => !SCENARIO_FILTER || SCENARIO_FILTER.has(sc.name));
const wanted = (server: string) => !SERVER_FILTER || SERVER_FILTER.has(server);
const RESULT_NAME = process.env.THRIFT_PEERS_NAME ?? 'thrift-peers';
if (!/^[a-z0-9-]{1,64}$/.test(RESULT_NAME))
  throw new Error(`THRIFT_PEERS_NAME must be lowercase letters, digits and dashes: ${RESULT_NAME}`);
/** The CPUs this process (and so every server and client it starts) may run on, from /proc/self/status. */
function cpusAllowed(): string {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Cpus_allowed_list:'));
  return line ? line.split(':')[1]!.trim() : 'unknown';
}

interface Figure {
  calls: number;
  seconds: number;
  calls_per_sec: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  /** Server CPU (all threads) over the scenario ÷ calls, µs; added by the driver. */
  server_cpu_us_per_call?: number;
}

interface Summary {
  calls_per_sec: number;
  p50_ms: number;
  p99_ms: number;
  server_cpu_us_per_call: number;
}

const CLK_TCK = 100; // Linux USER_HZ, the unit of /proc/<pid>/stat times

/** CPU time used so far by all threads of `pid`, in ns. */
function cpuNs(pid: number): number {
  try {
    let sum = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      sum += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    }
    if (Number.isFinite(sum)) return sum;
  } catch {
    // no schedstat (or a thread ended while listing): use the process's own totals
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime, stime: fields 14 and 15 of stat(5), 12 and 13 after pid and comm.
  return ((Number(f[11]) + Number(f[12])) / CLK_TCK) * 1e9;
}

interface Server {
  name: string;
  describe: string;
  logger: string;
  child: ChildProcess;
  socket: string;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function setup(): boolean {
  const r = spawnSync(join(src, 'setup.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 });
  if (r.status === 3) return false;
  if (r.status !== 0) throw new Error(`bench/thrift-peers/setup.sh failed (status ${r.status}, signal ${r.signal})`);
  return true;
}

/** Spawn a server and wait (bounded) for its ready line on stdout. */
async function startServer(
  name: string,
  describe: string,
  logger: string,
  cmd: string,
  args: string[],
  socket: (line: string) => string,
): Promise<Server> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const line = await new Promise<string>((resolveLine, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${name}: not ready after 30 s`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolveLine(buf.slice(0, nl));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name}: exited before ready (code ${code}, signal ${signal})`));
    });
  });
  return { name, describe, logger, child, socket: socket(line) };
}

async function stopServer(s: Server): Promise<void> {
  const { child } = s;
  if (child.exitCode !== null || child.signalCode !== null) {
    children.delete(child);
    return;
  }
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
  children.delete(child);
}

function runClient(s: Server, sc: Scenario): Figure {
  const pid = s.child.pid!;
  const cpu0 = cpuNs(pid);
  const r = spawnSync(join(build, 'client'), [s.socket, sc.op, sc.pattern, String(sc.calls), String(sc.threads), s.logger], {
    encoding: 'utf8',
    timeout: CLIENT_TIMEOUT_MS,
  });
  const out = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !out.startsWith('{'))
    throw new Error(`client ${s.name} ${sc.name}: status ${r.status} signal ${r.signal}: ${r.stderr.trim().slice(0, 500)}`);
  const fig = JSON.parse(out) as Figure;
  fig.server_cpu_us_per_call = round((cpuNs(pid) - cpu0) / 1000 / Math.max(1, fig.calls), 2);
  return fig;
}

/** One 1 KiB row per transaction, WAL, synchronous=NORMAL: transactions/s. */
function sqliteFloor(dir: string, n: number): number {
  const path = join(dir, 'floor.db');
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, data TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO t (data) VALUES (?)');
    const one = db.transaction((data: string) => insert.run(data));
    const row = 'x'.repeat(1024);
    const start = performance.now();
    for (let i = 0; i < n; i++) one(row);
    return n / ((performance.now() - start) / 1000);
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  if (!setup()) {
    const file = writeResult(RESULT_NAME, {
      skipped: 'thrift-compiler, libthrift-dev, libboost-dev, g++ or python3-thrift missing and not installable (needs apt-get as root)',
    });
    console.log(`thrift-peers: skipped; written to ${file}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tpb-'));
  const servers: Server[] = [];
  const baseRoot = resolve(process.env.THRIFT_PEERS_BASE_ROOT ?? join(repo, '../thrift-base/dist'));
  try {
    const projectServer = (name: string, root: string, describe: string) => {
      const d = mkdtempSync(join(dir, `${name}-`));
      return startServer(
        name,
        describe,
        'kolide_grpc',
        process.execPath,
        [join(here, 'project-server.js'), '--dir', d, '--root', root],
        (l) => (JSON.parse(l) as { socket: string }).socket,
      );
    };
    if (wanted('project')) {
      servers.push(
        await projectServer(
          'project',
          join(repo, 'dist'),
          'ExtensionServer (src/osquery), table plugin + kolide_grpc logger (SQLite log buffer, committed before answering)',
        ),
      );
    }
    if (wanted('project_base') && existsSync(join(baseRoot, 'src/osquery/extension-server.js'))) {
      servers.push(await projectServer('project_base', baseRoot, `the same, from the build at ${baseRoot} (before)`));
    }
    if (wanted('cpp')) {
      servers.push(
        await startServer(
          'cpp',
          'Apache Thrift C++ 0.17 TSimpleServer, TBufferedTransport, TBinaryProtocol; logString: write(2) to a file, no fsync',
          'bench_logger',
          join(build, 'cpp-server'),
          [join(dir, 'cpp.sock'), join(dir, 'cpp.log')],
          () => join(dir, 'cpp.sock'),
        ),
      );
    }
    if (wanted('python')) {
      servers.push(
        await startServer(
          'python',
          'Apache Thrift Python 0.17 (python3-thrift) TSimpleServer, TBufferedTransport, pure-Python TBinaryProtocol; logString: os.write to a file, no fsync',
          'bench_logger',
          '/usr/bin/python3',
          [join(src, 'py-server.py'), join(build, 'gen-py'), join(dir, 'py.sock'), join(dir, 'py.log')],
          () => join(dir, 'py.sock'),
        ),
      );
    }
    if (wanted('bare')) {
      servers.push(
        await startServer(
          'bare',
          'bare Node floor (bare-server.ts): node:net, every request answered with a reply encoded at start-up (the same bytes as the project), no framing, decoding or handler; logString: canned OK, no store',
          'bench_logger',
          process.execPath,
          [join(here, 'bare-server.js'), '--dir', mkdtempSync(join(dir, 'bare-'))],
          (l) => (JSON.parse(l) as { socket: string }).socket,
        ),
      );
    }
    // Warm-up: every server, every scenario, once (JIT, page cache, SQLite file).
    for (const s of servers) for (const sc of SCENARIOS) runClient(s, { ...sc, calls: Math.max(10, Math.ceil(sc.calls / 10)) });

    const rounds: Array<{ floor_tx_per_sec: number; load_avg_1m: number; figures: Record<string, Record<string, Figure>> }> = [];
    const loadBefore = round(loadavg()[0]!, 2);
    for (let r = 0; r < ROUNDS; r++) {
      const figures: Record<string, Record<string, Figure>> = {};
      const order = r % 2 === 0 ? servers : [...servers].reverse();
      for (const sc of SCENARIOS) {
        for (const s of order) (figures[s.name] ??= {})[sc.name] = runClient(s, sc);
      }
      const floor = sqliteFloor(dir, 3000);
      rounds.push({ floor_tx_per_sec: floor, load_avg_1m: round(loadavg()[0]!, 2), figures });
      const brief = (f: Record<string, Figure>) =>
        Object.entries(f)
          .map(([k, v]) => `${k} ${Math.round(v.calls_per_sec)}/s ${v.server_cpu_us_per_call} µs`)
          .join(', ');
      console.log(
        `round ${r + 1}/${ROUNDS}: ${servers.map((s) => `${s.name}: ${brief(figures[s.name]!)}`).join('; ')}; floor ${Math.round(floor)} tx/s`,
      );
    }

    const summary: Record<string, Record<string, Summary>> = {};
    for (const s of servers) {
      summary[s.name] = {};
      for (const sc of SCENARIOS) {
        const xs = rounds.map((x) => x.figures[s.name]![sc.name]!);
        summary[s.name]![sc.name] = {
          calls_per_sec: round(median(xs.map((x) => x.calls_per_sec)), 1),
          p50_ms: round(median(xs.map((x) => x.p50_ms))),
          p99_ms: round(median(xs.map((x) => x.p99_ms))),
          server_cpu_us_per_call: round(median(xs.map((x) => x.server_cpu_us_per_call ?? Number.NaN)), 2),
        };
      }
    }
    const has = (n: string) => servers.some((s) => s.name === n);
    /** Median over rounds of a's calls/s ÷ b's calls/s in the same round. */
    const ratio = (a: string, b: string, sc: string) =>
      round(median(rounds.map((x) => x.figures[a]![sc]!.calls_per_sec / x.figures[b]![sc]!.calls_per_sec)), 2);
    /** Median over rounds of a's server CPU per call ÷ b's in the same round. */
    const cpuRatio = (a: string, b: string, sc: string) =>
      round(median(rounds.map((x) => x.figures[a]![sc]!.server_cpu_us_per_call! / x.figures[b]![sc]!.server_cpu_us_per_call!)), 2);
    const pairs: Array<[string, string]> = [];
    if (has('project')) for (const s of servers) if (s.name !== 'project') pairs.push(['project', s.name]);
    // The floor against the peers: what Node's own socket machinery costs (ping) and what the client bounds (table).
    if (has('bare')) for (const peer of ['python', 'cpp', 'project_base']) if (has(peer)) pairs.push(['bare', peer]);
    const ratios: Record<string, Record<string, number>> = {};
    const cpu_ratios: Record<string, Record<string, number>> = {};
    for (const [a, b] of pairs) {
      ratios[`${a}/${b}`] = Object.fromEntries(SCENARIOS.map((sc) => [sc.name, ratio(a, b, sc.name)]));
      cpu_ratios[`${a}/${b}`] = Object.fromEntries(SCENARIOS.map((sc) => [sc.name, cpuRatio(a, b, sc.name)]));
    }
    const hasScenario = (n: string) => SCENARIOS.some((sc) => sc.name === n);
    const sqlite =
      has('project') && hasScenario('ping_persistent') && hasScenario('log_sequential')
        ? (() => {
            const implied = rounds.map((x) => 1 / (1 / x.floor_tx_per_sec + 1 / x.figures.project!.ping_persistent!.calls_per_sec));
            return {
              floor_tx_per_sec: round(median(rounds.map((x) => x.floor_tx_per_sec)), 1),
              implied_sequential_log_limit_per_sec: round(median(implied), 1),
              project_log_sequential_over_limit: round(
                median(rounds.map((x, i) => x.figures.project!.log_sequential!.calls_per_sec / implied[i]!)),
                2,
              ),
            };
          })()
        : { floor_tx_per_sec: round(median(rounds.map((x) => x.floor_tx_per_sec)), 1) };
    const target = (a: string, b: string, sc: string, min: number) =>
      has(a) && has(b) && hasScenario(sc) ? ratios[`${a}/${b}`]![sc]! >= min : null;
    const targets = {
      table_vs_before_ge_7x: target('project', 'project_base', 'table_persistent', 7),
      table_p50_le_2ms: has('project') && hasScenario('table_persistent') ? summary.project!.table_persistent!.p50_ms <= 2 : null,
      table_vs_cpp_ge_0_5x: target('project', 'cpp', 'table_persistent', 0.5),
      ping_vs_python_ge_1x_persistent: target('project', 'python', 'ping_persistent', 1),
      ping_vs_python_ge_1x_per_call: target('project', 'python', 'ping_per_call', 1),
    };
    // Headline figures first: bench/summary.ts shows the first 60 leaves.
    const result = {
      rounds: ROUNDS,
      cpus_allowed: cpusAllowed(),
      // Other work shares this machine: the 1-minute load average before the rounds and after each one.
      load_avg_1m: { before: loadBefore, after_rounds: rounds.map((x) => x.load_avg_1m) },
      ratios,
      targets,
      // Server CPU per call (all threads, /proc schedstat), medians of per-round ratios: load-independent enough.
      cpu_ratios,
      sqlite,
      summary,
      client:
        'Apache Thrift C++ 0.17 (Debian libthrift), generated from proto/osquery/osquery.thrift, TBufferedTransport (64 KiB buffers) + TBinaryProtocol over the Unix socket; one process per scenario',
      servers: Object.fromEntries(servers.map((s) => [s.name, s.describe])),
      scenarios: SCENARIOS,
      per_round: rounds,
    };
    const file = writeResult(RESULT_NAME, result);
    writeFileSync(
      join(resultsDir(), `${RESULT_NAME}.md`),
      markdown(summary, ratios, cpu_ratios, sqlite, servers, targets, result.load_avg_1m, result.cpus_allowed),
    );
    console.log(JSON.stringify({ summary, ratios, sqlite, targets }, null, 2));
    console.log(`written to ${file} and ${RESULT_NAME}.md`);
  } finally {
    for (const s of servers) await stopServer(s);
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

function markdown(
  summary: Record<string, Record<string, Summary>>,
  ratios: Record<string, Record<string, number>>,
  cpuRatios: Record<string, Record<string, number>>,
  sqlite: Record<string, number>,
  servers: Server[],
  targets: Record<string, boolean | null>,
  load: { before: number; after_rounds: number[] },
  cpus: string,
): string {
  const names = servers.map((s) => s.name);
  const lines = [
    `# Thrift peers (bench/${RESULT_NAME}; CPUs allowed: ${cpus})`,
    '',
    `Neutral C++ client (Apache Thrift 0.17, generated from proto/osquery/osquery.thrift), servers alternated in one run, medians of ${ROUNDS} rounds; ratios are medians of per-round a/b calls/s. \`bare\` is the floor: node:net answering prebuilt replies, no decoding or handler. Written by bench/thrift-peers/driver.ts; figures in ${RESULT_NAME}.json.`,
    '',
    `| scenario | ${names.map((n) => `${n} calls/s (p50 / p99 ms)`).join(' | ')} | ${Object.keys(ratios).join(' | ')} |`,
    `| --- | ${names.map(() => '---').join(' | ')} | ${Object.keys(ratios)
      .map(() => '---')
      .join(' | ')} |`,
  ];
  for (const sc of SCENARIOS) {
    const cells = names.map((n) => {
      const f = summary[n]![sc.name]!;
      return `${f.calls_per_sec} (${f.p50_ms} / ${f.p99_ms})`;
    });
    lines.push(
      `| ${sc.name} | ${cells.join(' | ')} | ${Object.values(ratios)
        .map((r) => r[sc.name])
        .join(' | ')} |`,
    );
  }
  lines.push(
    '',
    `Server CPU per call, µs (all the server's threads over the scenario, /proc/<pid>/task/*/schedstat; medians), and medians of per-round ratios of it:`,
    '',
    `| scenario | ${names.join(' | ')} | ${Object.keys(cpuRatios).join(' | ')} |`,
    `| --- | ${names.map(() => '---').join(' | ')} | ${Object.keys(cpuRatios)
      .map(() => '---')
      .join(' | ')} |`,
    ...SCENARIOS.map(
      (sc) =>
        `| ${sc.name} | ${names.map((n) => summary[n]![sc.name]!.server_cpu_us_per_call).join(' | ')} | ${Object.values(cpuRatios)
          .map((r) => r[sc.name])
          .join(' | ')} |`,
    ),
  );
  lines.push(
    '',
    sqlite.implied_sequential_log_limit_per_sec === undefined
      ? `SQLite floor (one 1 KiB row per transaction, WAL, synchronous=NORMAL): ${sqlite.floor_tx_per_sec} tx/s.`
      : `SQLite floor (one 1 KiB row per transaction, WAL, synchronous=NORMAL): ${sqlite.floor_tx_per_sec} tx/s; implied sequential logString limit 1/(1/floor + 1/ping): ${sqlite.implied_sequential_log_limit_per_sec}/s; project sequential logString / limit: ${sqlite.project_log_sequential_over_limit}.`,
    '',
    `Load average (1 min; other work shares the machine): ${load.before} before the rounds, ${load.after_rounds.join(', ')} after each.`,
    '',
    `Targets: ${Object.entries(targets)
      .map(([k, v]) => `${k}: ${v === null ? 'n/a' : v ? 'met' : 'missed'}`)
      .join(', ')}.`,
    '',
    'Servers:',
    ...servers.map((s) => `- ${s.name}: ${s.describe}`),
    '',
  );
  return lines.join('\n');
}

await main();
