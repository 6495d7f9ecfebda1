/**
 * A Runner against the osqueryd stand-in, with test-sized timings, a pid
 * sampler (every osqueryd pid ever seen, for the afterEach leak check) and a
 * stop() that interrupts, reaps and removes the root.
 */
import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { Runner, type RunnerOptions } from '../../src/runtime/runner.js';
import type { RegistrationStatus } from '../../src/runtime/supervisor.js';
import { testExtensionFactory } from './fixtures/test-extension.mjs';
import { osquerydPath, reapAll, tempRoot } from './helpers.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

export const FAST: Pick<RunnerOptions, 'timings' | 'flagTimings' | 'backoff' | 'limits'> = {
  timings: {
    healthIntervalMs: 300,
    healthStartupDelayMs: 300,
    // Generous: the suite shares two cores with other suites, and a slow answer is not what these tests are about.
    healthTimeoutMs: 2_000,
    healthMaxFailures: 3,
    managerPingIntervalMs: 500,
    stopGraceMs: 2_000,
    callTimeoutMs: 2_000,
  },
  flagTimings: { extensionsInterval: 1, extensionsTimeout: 5, distributedInterval: 1, configRefresh: 60 },
  backoff: { initialMs: 100, maxMs: 2_000, stableAfterMs: 10_000 },
  limits: { cgroup: 'off' },
};

export interface Harness {
  root: string;
  runner: Runner;
  /** Every osqueryd pid seen in status or history. */
  pids: Set<number>;
  /** Log lines (JSON) for dumping on failure. */
  logs: string[];
  status(id: string): RegistrationStatus;
  /** Interrupt, reap, remove the root (unless keepRoot); returns pids that had to be killed. */
  stop(options?: { keepRoot?: boolean }): Promise<number[]>;
}

export async function startRunner(overrides: Partial<RunnerOptions> = {}, existingRoot?: string): Promise<Harness> {
  // A harness started on an existing root takes it over (and removes it at stop).
  const tmp = existingRoot ? { dir: existingRoot, cleanup: () => rmSync(existingRoot, { recursive: true, force: true }) } : tempRoot('ri');
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void (logs.length < 20_000 && logs.push(line)) });
  const runner = new Runner({
    root: tmp.dir,
    osquerydPath: osquerydPath(),
    extensionFactory: testExtensionFactory(),
    logger,
    ...FAST,
    ...overrides,
  });
  const execution = runner.execute();
  execution.catch(() => undefined);
  const pids = new Set<number>();
  const sample = () => {
    for (const s of runner.status()) if (s.pid) pids.add(s.pid);
  };
  const sampler = setInterval(sample, 20);
  // Ready once execute() got past the lock, the reaper and the socket dir.
  for (let i = 0; i < 500 && runner.socketDirectory === undefined; i++) {
    const failed = await Promise.race([
      execution.then(
        () => true,
        () => true,
      ),
      new Promise<false>((r) => setTimeout(() => r(false), 10)),
    ]);
    if (failed) break;
  }
  if (runner.socketDirectory === undefined) await execution;
  let stopped: Promise<number[]> | undefined;
  return {
    root: tmp.dir,
    runner,
    pids,
    logs,
    status: (id) => runner.statusOf(rid(id)),
    stop: (options = {}) =>
      (stopped ??= (async () => {
        sample();
        const ids = runner.registrationsList().map((r) => r.id);
        for (const id of ids) for (const h of runner.history(id, 100)) if (h.pid) pids.add(h.pid);
        clearInterval(sampler);
        await runner.interrupt();
        await execution.catch(() => undefined);
        const leaked = await reapAll(pids);
        if (!options.keepRoot) tmp.cleanup();
        return leaked;
      })()),
  };
}

/** Print the harness log tail when a test failed (launcher's waitHealthy dumps logs too). */
export function dumpLogs(h: Harness | undefined, failed: boolean): void {
  if (!h || !failed) return;
  const tail = h.logs.slice(-200).join('');
  process.stderr.write(`--- runner log tail (${h.root}) ---\n${tail}\n`);
}
