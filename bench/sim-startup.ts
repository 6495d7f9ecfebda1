/**
 * osqueryd-sim start-up (issue 3): time from spawn until the manager socket
 * appears, and until `select * from osquery_info` answers on it, median of 5
 * runs, each a fresh process with a fresh temp dir (no extensions, the
 * filesystem config plugin with a missing config file). `version_exit` is
 * `osqueryd-sim --version`, i.e. bare Node start-up plus argument parsing,
 * the floor under the other figures.
 *
 * For scale: launcher measured real osqueryd start-up at "just over a
 * second" on average, p95 "just over two seconds" (docs/protocol/device.md#timings).
 *
 * Run: node dist/bench/sim-startup.js
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ExtensionManagerClient } from '../src/osquery/client.js';
import { median, round, writeResult } from './lib.js';

const RUNS = 5;
const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, here.includes('/dist/') ? '../../bin/osqueryd-sim' : '../bin/osqueryd-sim');

async function versionExit(): Promise<number> {
  const t = performance.now();
  const child = spawn(process.execPath, [BIN, '--version'], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return performance.now() - t;
}

async function startup(): Promise<{ socketMs: number; answerMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bs-'));
  const socket = join(dir, 'o.em');
  const t = performance.now();
  const child = spawn(
    process.execPath,
    [
      BIN,
      `--extensions_socket=${socket}`,
      `--pidfile=${join(dir, 'pid')}`,
      `--database_path=${join(dir, 'db')}`,
      `--logger_path=${join(dir, 'logs')}`,
      `--config_path=${join(dir, 'none.conf')}`,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise((r) => child.once('exit', r));
  const client = new ExtensionManagerClient(socket, { timeoutMs: 2_000 });
  try {
    while (!existsSync(socket)) {
      if (performance.now() - t > 20_000) throw new Error('socket did not appear within 20 s');
      await sleep(1);
    }
    const socketMs = performance.now() - t;
    for (;;) {
      try {
        const rows = await client.query('select * from osquery_info');
        if (rows[0]?.pid !== String(child.pid)) throw new Error(`unexpected osquery_info: ${JSON.stringify(rows)}`);
        break;
      } catch (err) {
        if (performance.now() - t > 20_000) throw err;
        await sleep(1);
      }
    }
    return { socketMs, answerMs: performance.now() - t };
  } finally {
    client.close();
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

const version: number[] = [];
const socket: number[] = [];
const answer: number[] = [];
for (let i = 0; i < RUNS; i++) {
  version.push(await versionExit());
  const r = await startup();
  socket.push(r.socketMs);
  answer.push(r.answerMs);
}
const file = writeResult('sim-startup', {
  runs: RUNS,
  spawn_to_socket_ms: { median: round(median(socket), 1), min: round(Math.min(...socket), 1), max: round(Math.max(...socket), 1) },
  spawn_to_osquery_info_ms: { median: round(median(answer), 1), min: round(Math.min(...answer), 1), max: round(Math.max(...answer), 1) },
  version_exit_ms: { median: round(median(version), 1) },
});
console.log(
  `sim-startup: spawn→socket ${round(median(socket), 1)} ms, spawn→osquery_info ${round(median(answer), 1)} ms (median of ${RUNS}); written to ${file}`,
);
