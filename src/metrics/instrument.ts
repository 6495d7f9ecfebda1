/**
 * Plugin-dispatch instrumentation (issue 18): wraps an extension's plugins
 * so each call osqueryd makes costs one counter increment and one histogram
 * observation, plus the distributed queries handed out and answered. Used
 * only when metrics are enabled; the Thrift codec (src/osquery/wire) is not
 * touched. No prom-client here: this file is loaded with the app.
 */
import type { DistributedResults, Plugin } from '../osquery/plugins.js';
import type { MetricsRecorder } from './recorder.js';

const seconds = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9;

/** Time `fn` (sync or async) and report it; the result and any error pass through unchanged. */
function timed<T>(report: (s: number, ok: boolean) => void, fn: () => T): T {
  const start = process.hrtime.bigint();
  let result: T;
  try {
    result = fn();
  } catch (err) {
    report(seconds(start), false);
    throw err;
  }
  if (result instanceof Promise) {
    return result.then(
      (v: unknown) => {
        report(seconds(start), true);
        return v;
      },
      (err: unknown) => {
        report(seconds(start), false);
        throw err;
      },
    ) as T;
  }
  report(seconds(start), true);
  return result;
}

/** Queries osqueryd answered in one writeResults: every id with rows, a status or a message. */
export function answeredCount(r: DistributedResults): number {
  const ids = new Set([...Object.keys(r.queries ?? {}), ...Object.keys(r.statuses ?? {}), ...Object.keys(r.messages ?? {})]);
  return ids.size;
}

export function instrumentPlugins(plugins: readonly Plugin[], registrationId: string, m: MetricsRecorder): Plugin[] {
  return plugins.map((p): Plugin => {
    const label = `${p.kind}/${p.name}`;
    const report = (s: number, ok: boolean) => m.extensionCall(registrationId, label, s, ok);
    switch (p.kind) {
      case 'table':
        return { kind: 'table', name: p.name, columns: p.columns, generate: (ctx) => timed(report, () => p.generate(ctx)) };
      case 'config':
        return {
          kind: 'config',
          name: p.name,
          genConfig: () => timed(report, () => p.genConfig()),
          ...(p.genPack ? { genPack: (name: string, value: string) => timed(report, () => p.genPack!(name, value)) } : {}),
        };
      case 'logger':
        return {
          kind: 'logger',
          name: p.name,
          ...(p.features !== undefined ? { features: p.features } : {}),
          ...(p.init ? { init: (name: string) => timed(report, () => p.init!(name)) } : {}),
          logString: (text, kind) => timed(report, () => p.logString(text, kind)),
          logStatus: (entries, raw) => timed(report, () => p.logStatus(entries, raw)),
        };
      default: // distributed
        return {
          kind: 'distributed',
          name: p.name,
          getQueries: () =>
            timed(report, () =>
              p.getQueries().then((q) => {
                m.distributedQueries(registrationId, Object.keys(q.queries ?? {}).length, 0);
                return q;
              }),
            ),
          writeResults: (r) =>
            timed(report, () => {
              m.distributedQueries(registrationId, 0, answeredCount(r));
              return p.writeResults(r);
            }),
        };
    }
  });
}
