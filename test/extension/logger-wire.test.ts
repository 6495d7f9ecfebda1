/**
 * What the device server receives from the logger and distributed plugins
 * (issue 15), through osqueryd's request shapes and a real dev server on
 * 127.0.0.1: status lines byte for byte as osqueryd wrote them, health logs
 * refused like launcher, a `""` results value sent as `[]` rows.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { call, makeEnv, type Env } from './support.js';

let env: Env | undefined;
afterEach(async () => {
  await env?.cleanup();
  env = undefined;
});

function params(e: Env, method: string): Record<string, unknown> {
  const req = e.server.requests().find((r) => r.rpcMethod === method);
  if (!req) throw new Error(`no ${method} request recorded`);
  return (JSON.parse(req.body.toString('utf8')) as { params: Record<string, unknown> }).params;
}

describe('kolide_grpc plugins on the wire (issue 15)', () => {
  // issue 15: status lines were re-serialised (key order, escapes, number spelling changed).
  it('passes status log lines through byte for byte', async () => {
    env = await makeEnv();
    const ext = env.make();
    await ext.enroll();
    const first = '{"s":0,"f":"events.cpp","i":825,"m":"caf\\u00e9 \\"q\\" \\/x","h":"h1","c":"Mon Jun 10 12:00:00 2024 UTC","u":1.718e9}';
    const second = '{"u":2,"s":1,   "m":"second"}';
    const res = await call(ext.loggerPlugin, { status: 'true', log: `[ ${first} ,\n${second}]` });
    expect(res.status.code).toBe(0);
    await ext.publishNow();
    const p = params(env, 'PublishLogs');
    expect(p.LogType).toBe(4);
    expect(p.Logs).toEqual([first, second]);
    // The old core's object form keeps its values' text too.
    env.server.clearRequests();
    await call(ext.loggerPlugin, { status: 'true', log: `{"":${second},"":${first}}` });
    await ext.publishNow();
    expect(params(env, 'PublishLogs').Logs).toEqual([second, first]);
  });

  // issue 15: health logs were silently accepted; launcher answers with an error.
  it('refuses health logs with an error', async () => {
    env = await makeEnv();
    const ext = env.make();
    const res = await call(ext.loggerPlugin, { health: '{"a":1}' });
    expect(res.status.code).toBe(1);
    expect(res.status.message).toMatch(/health logs are unsupported/);
    expect(ext.status().buffers.result.count + ext.status().buffers.status.count).toBe(0);
  });

  // issue 15: a "" results value became rows: null; the Go SDK gives [].
  it('sends a "" results value as [] rows and an empty array as null', async () => {
    env = await makeEnv();
    const ext = env.make();
    await ext.enroll();
    const results = JSON.stringify({ queries: { none: '', empty: [] }, statuses: { none: 0, empty: 0 } });
    expect((await call(ext.distributedPlugin, { action: 'writeResults', results })).status.code).toBe(0);
    const sent = params(env, 'PublishResults').Results as Array<{ query_name: string; rows: unknown }>;
    expect(Object.fromEntries(sent.map((r) => [r.query_name, r.rows]))).toEqual({ none: [], empty: null });
  });
});
