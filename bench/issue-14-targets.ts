/**
 * Issue 14's targets, read from the latest results of the benchmarks that
 * measure them (thrift-peers, recovery, runtime-memory): each target with the
 * figure it is judged on, whether it is met, and the load average of the run
 * that produced it (other work shares this machine). Measures nothing itself;
 * run it after those benchmarks. What bounds the missed ones: ADRs 0022,
 * 0023, 0026 and 0027; for the server-loop targets the bare Node floor of the
 * same run is recorded beside the figure.
 *
 * Run: node dist/bench/issue-14-targets.js
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resultsDir, writeResult } from './lib.js';

type Obj = Record<string, unknown>;

function read(name: string): Obj | undefined {
  const f = join(resultsDir(), `${name}.json`);
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Obj) : undefined;
}

const get = (o: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Obj)[k] : undefined), o);
const num = (o: unknown, path: string): number | undefined => {
  const v = get(o, path);
  return typeof v === 'number' ? v : undefined;
};

interface Target {
  target: string;
  value: number | string | undefined;
  met: boolean | undefined;
  recorded: unknown;
  load_avg_1m: unknown;
  source: string;
  /** For a target a floor can bound: the bare Node server's figure in the same run, and what that says. */
  floor?: { figure: string; value: number | string; project_over_bare_calls_per_sec: number | string; reading: string };
}

const targets: Target[] = [];
const add = (
  target: string,
  value: number | undefined,
  ok: (v: number) => boolean,
  file: string,
  data: Obj | undefined,
  load: unknown,
  floor?: Target['floor'],
) =>
  targets.push({
    target,
    value,
    met: value === undefined ? undefined : ok(value),
    recorded: data?.date,
    load_avg_1m: load,
    source: `bench/results/${file}.json`,
    ...(floor ? { floor } : {}),
  });

/** The bare Node floor (bench/thrift-peers/bare-server.ts: prebuilt replies, no decoding, no store) as a bound. */
const bareFloor = (
  figure: string,
  value: number | undefined,
  ok: (v: number) => boolean,
  projectOverBare: number | undefined,
  adr: string,
) => ({
  figure,
  value: value ?? 'not measured',
  project_over_bare_calls_per_sec: projectOverBare ?? 'not measured',
  reading:
    value === undefined
      ? 'not measured'
      : ok(value)
        ? `the floor meets the target: the gap is the project code (${adr})`
        : `the bare node:net floor misses the target too on this machine; what the project adds to it: ${adr}`,
});

const tp = read('thrift-peers');
const tpLoad = get(tp, 'load_avg_1m') ?? 'not recorded by this run';
add(
  'table 1000x10 p50 <= 2 ms (one connection)',
  num(tp, 'summary.project.table_persistent.p50_ms'),
  (v) => v <= 2,
  'thrift-peers',
  tp,
  tpLoad,
);
{
  // The C++ client's own decoding bounds calls/s: the bare server (a prebuilt reply) over the old project is the
  // highest ratio any server could reach with it in this run.
  const ok = (v: number) => v >= 7;
  add(
    'table >= 7x the old project (9a577a8)',
    num(tp, 'ratios.project/project_base.table_persistent'),
    ok,
    'thrift-peers',
    tp,
    tpLoad,
    bareFloor(
      'bare Node / old project, table, same run',
      num(tp, 'ratios.bare/project_base.table_persistent'),
      ok,
      num(tp, 'ratios.project/bare.table_persistent'),
      'adr/0027',
    ),
  );
}
add('table >= 0.5x Apache C++', num(tp, 'ratios.project/cpp.table_persistent'), (v) => v >= 0.5, 'thrift-peers', tp, tpLoad);
for (const pattern of ['persistent', 'per_call'] as const) {
  const ok = (v: number) => v >= 1;
  add(
    `ping >= 1.0x Apache Python, ${pattern === 'persistent' ? 'one connection' : 'connection per call'}`,
    num(tp, `ratios.project/python.ping_${pattern}`),
    ok,
    'thrift-peers',
    tp,
    tpLoad,
    bareFloor(
      'bare Node / Apache Python, same run',
      num(tp, `ratios.bare/python.ping_${pattern}`),
      ok,
      num(tp, `ratios.project/bare.ping_${pattern}`),
      'adr/0026',
    ),
  );
}
add(
  'sequential durable logString >= 0.8x the implied limit',
  num(tp, 'sqlite.project_log_sequential_over_limit'),
  (v) => v >= 0.8,
  'thrift-peers',
  tp,
  tpLoad,
);
{
  const ok = (v: number) => v >= 80_000;
  add(
    '64 concurrent durable logString >= 80k lines/s',
    num(tp, 'summary.project.log_concurrent_64.calls_per_sec'),
    ok,
    'thrift-peers',
    tp,
    tpLoad,
    bareFloor(
      'bare Node, canned OK and no store, lines/s, same run',
      num(tp, 'summary.bare.log_concurrent_64.calls_per_sec'),
      ok,
      num(tp, 'ratios.project/bare.log_concurrent_64'),
      'adr/0023',
    ),
  );
}

// Context, not a target: the same ping ratio with the client and the servers on one CPU (ADR 0026's "One CPU").
const one = read('thrift-peers-one-cpu');
const context = [
  {
    figure: 'ping project/Apache Python, one connection, client and servers on one CPU (taskset)',
    value: num(one, 'ratios.project/python.ping_persistent'),
    recorded: one?.date,
    load_avg_1m: get(one, 'load_avg_1m'),
    source: 'bench/results/thrift-peers-one-cpu.json',
  },
  {
    figure: "table project/old project (9a577a8), osqueryd's connection per call (the target is judged on one connection)",
    value: num(tp, 'ratios.project/project_base.table_per_call'),
    recorded: tp?.date,
    load_avg_1m: tpLoad,
    source: 'bench/results/thrift-peers.json',
  },
];

const rec = read('recovery');
const k9 = get(rec, 'kill9_to_healthy_ms') as Obj | undefined;
for (const [key, label] of [
  ['after.kolide', 'vendor'],
  ['after.acme', 'CPU-capped tenant'],
] as const) {
  const v = num(k9?.[key], 'observed.p50');
  add(
    `kill -9 to healthy p50 <= 1.0 s (${label})`,
    v === undefined ? undefined : v / 1000,
    (x) => x <= 1,
    'recovery',
    rec,
    get(rec, 'load_avg_1m'),
  );
}
const stop = num(rec, 'clean_stop_10_instances_ms.after.p50');
add(
  'clean stop of 10 instances <= 1.5 s',
  stop === undefined ? undefined : stop / 1000,
  (x) => x <= 1.5,
  'recovery',
  rec,
  get(rec, 'load_avg_1m'),
);

const mem = read('runtime-memory');
const scen = (get(mem, 'scenarios') as Obj[] | undefined) ?? [];
for (const [n, limit] of [
  [1, 70],
  [50, 100],
] as const) {
  const s = scen.find((x) => x.tree === 'after' && x.registrations === n);
  add(
    `supervisor RSS <= ${limit} MB with ${n} registration(s)`,
    num(s, 'supervisor_rss_mb'),
    (v) => v <= limit,
    'runtime-memory',
    mem,
    get(mem, 'load_avg_1m'),
  );
}

const file = writeResult('issue-14-targets', {
  note: 'compiled from the latest results of the benchmarks named in each source; values in ms, s, MB or ratios as the target says; what bounds the missed targets: adr/0022-hot-path-and-footprint-bounds.md, adr/0023 (ingest), adr/0026 (server loop, one CPU against two), adr/0027 (table encoding)',
  report: targets.map((t) => ({
    target: t.target,
    value: t.value ?? 'not measured',
    met: t.met === undefined ? 'not measured' : t.met ? 'met' : 'missed',
    bound:
      t.met === false && t.floor
        ? `bare Node floor ${t.floor.value} (project/floor ${t.floor.project_over_bare_calls_per_sec}): ${t.floor.reading}`
        : '',
    source: t.source,
  })),
  met: targets.filter((t) => t.met === true).length,
  missed: targets.filter((t) => t.met === false).length,
  targets: targets.map((t) => ({ ...t, met: t.met === undefined ? 'not measured' : t.met })),
  context: context.map((c) => ({ ...c, value: c.value ?? 'not measured' })),
});
for (const t of targets)
  console.log(
    `${t.met === undefined ? '?' : t.met ? 'met   ' : 'missed'}  ${t.target}: ${t.value} (load ${JSON.stringify(t.load_avg_1m)})${
      t.floor && t.met === false
        ? `; floor ${t.floor.value}, project/floor ${t.floor.project_over_bare_calls_per_sec}: ${t.floor.reading}`
        : ''
    }`,
  );
console.log(`written to ${file}`);
