/**
 * Rewrites bench/results/summary.md from every bench/results/*.json: the
 * machine, then one table per benchmark with its figures (medians of
 * repeated runs, as each benchmark recorded them; a top-level `report` array
 * of flat rows comes first, as a table of its own). Run by bench/run.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machine, resultsDir } from './lib.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function leaves(value: Json, prefix: string, out: Array<[string, string]>): void {
  if (value === null || typeof value !== 'object') {
    out.push([prefix, String(value)]);
    return;
  }
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null)) {
      out.push([prefix, value.join(', ')]);
      return;
    }
    value.forEach((v, i) => {
      leaves(v, `${prefix}[${i}]`, out);
    });
    return;
  }
  for (const [k, v] of Object.entries(value)) leaves(v, prefix ? `${prefix}.${k}` : k, out);
}

type Row = Record<string, string | number | boolean | null>;

/** A top-level array of flat objects with the same keys (a benchmark's own report) is shown as a table of its own. */
function asTable(value: Json | undefined): Row[] | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined;
  const keys = (v: Json) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v).join('\0') : undefined);
  const first = keys(value[0]!);
  if (first === undefined) return undefined;
  for (const v of value) {
    if (keys(v) !== first) return undefined;
    if (Object.values(v as Record<string, Json>).some((x) => x !== null && typeof x === 'object')) return undefined;
  }
  return value as Row[];
}

const cell = (v: unknown) => String(v).replace(/\|/g, '\\|');

const dir = resultsDir();
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort();
const m = machine();
const lines = [
  '# Benchmark results',
  '',
  'Written by `bench/run` (not part of `npm test`). Each figure is the median of repeated runs unless its name says',
  'otherwise; p50/p95/p99 are latency percentiles within a run. The osqueryd used is the stand-in (`bin/osqueryd-sim`),',
  "so process start-up figures are Node start-up, not osqueryd's.",
  '',
  `Machine (this summary): ${m.cpu}, ${m.cores} cores, ${m.memory_gib} GiB, ${m.os}, Node ${m.node}.`,
  '',
];
for (const f of files) {
  const data = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, Json>;
  const { name, date, machine: mach, ...rest } = data;
  lines.push(`## ${String(name ?? f.replace(/\.json$/, ''))}`, '');
  lines.push(
    `Recorded ${String(date ?? '?')}${mach && typeof mach === 'object' && !Array.isArray(mach) ? ` on ${String(mach.cores)} cores (${String(mach.cpu)})` : ''}. Source: \`bench/${f.replace(/\.json$/, '.ts')}\`, data: \`bench/results/${f}\`.`,
    '',
  );
  const report = asTable(rest.report);
  if (report) {
    const cols = Object.keys(report[0]!);
    lines.push(`| ${cols.join(' | ')} |`, `| ${cols.map(() => '---').join(' | ')} |`);
    for (const r of report) lines.push(`| ${cols.map((c) => cell(r[c])).join(' | ')} |`);
    lines.push('');
    delete rest.report;
  }
  const rows: Array<[string, string]> = [];
  leaves(rest as Json, '', rows);
  lines.push('| figure | value |', '| --- | --- |');
  for (const [k, v] of rows.slice(0, 60)) lines.push(`| ${k} | ${cell(v)} |`);
  if (rows.length > 60) lines.push(`| … | ${rows.length - 60} more in the JSON file |`);
  lines.push('');
}
writeFileSync(join(dir, 'summary.md'), lines.join('\n'));
console.log(`wrote ${join(dir, 'summary.md')} from ${files.length} result files`);
