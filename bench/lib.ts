/** Shared helpers for benchmarks: statistics, machine description, result files. */
import { cpus, totalmem, platform, release, arch } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx]!;
}

export function machine(): Record<string, string | number> {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
  };
}

/** The repository's bench/results directory, from source or from dist/. */
export function resultsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  if (dir.includes(`${'/dist/'}`)) dir = dir.replace(/\/dist\/bench.*$/, '/bench');
  return join(dir, 'results');
}

export function writeResult(name: string, data: Record<string, unknown>): string {
  const dir = resultsDir();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ name, date: new Date().toISOString(), machine: machine(), ...data }, null, 2)}\n`);
  return file;
}

export const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;
