// issue 13: one tenant could take every output stream. StreamOutput had one cap of 64 for all
// callers, so acme holding 64 follow streams locked admin and every other tenant out. Now each
// tenant subject has its own cap and the last slots are kept for admin (src/control/stream-quota.ts).
// Real mTLS server on a Unix socket, real follow streams from real clients.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ControlClient } from '../../src/control/client.js';
import type { OutputLineView } from '../../src/control/mapping.js';
import type { ControlServer, ControlServerOptions } from '../../src/control/server.js';
import { ControlCallError } from '../../src/control/call-error.js';
import { DEFAULT_STREAM_QUOTA } from '../../src/control/stream-quota.js';
import { waitFor } from '../helpers/tmp.js';
import { FakeTarget, capturingLogger, clientFor, makePki, startServer, type Pki } from './fixtures.js';

interface Follower {
  lines: OutputLineView[];
  /** Settles when the stream ends: resolves on a quiet end, rejects with the call's error. */
  done: Promise<void>;
  error: () => unknown;
  abort: () => void;
}

function follow(client: ControlClient, id: string): Follower {
  const lines: OutputLineView[] = [];
  const ac = new AbortController();
  let error: unknown;
  const done = (async () => {
    for await (const line of client.streamOutput(id, { follow: true, fromBeginning: true, signal: ac.signal })) lines.push(line);
  })();
  done.catch((err: unknown) => (error = err));
  return { lines, done, error: () => error, abort: () => ac.abort() };
}

/** Open `n` follow streams; resolves once each is either receiving (open) or refused. */
async function openMany(client: ControlClient, id: string, n: number): Promise<{ open: Follower[]; refused: Follower[] }> {
  const all = Array.from({ length: n }, () => follow(client, id));
  await waitFor(() => all.every((f) => f.lines.length > 0 || f.error() !== undefined), 20_000, `${n} streams to open or be refused`);
  return { open: all.filter((f) => f.lines.length > 0), refused: all.filter((f) => f.error() !== undefined) };
}

function exhausted(f: Follower): ControlCallError {
  const err = f.error();
  expect(err).toBeInstanceOf(ControlCallError);
  expect((err as ControlCallError).grpcStatus).toBe(grpc.status.RESOURCE_EXHAUSTED);
  return err as ControlCallError;
}

describe('StreamOutput caps per caller (issue 13)', () => {
  let pki: Pki | undefined;
  let server: ControlServer | undefined;
  const followers: Follower[] = [];
  const clients: ControlClient[] = [];

  async function setUp(options: Partial<ControlServerOptions> = {}, tenants: string[] = []) {
    pki = await makePki(tenants);
    const target = new FakeTarget(['acme', 'globex', ...tenants]);
    for (const id of ['acme', 'globex', ...tenants]) target.ring(id).append('stdout', `hello from ${id}`);
    server = await startServer(pki, target, options);
    const client = (name: string) => {
      const c = clientFor(pki!, server!, name);
      clients.push(c);
      return c;
    };
    return { target, client };
  }

  afterEach(async () => {
    for (const f of followers.splice(0)) f.abort();
    for (const c of clients.splice(0)) c.close();
    await server?.close();
    pki?.cleanup();
    server = undefined;
    pki = undefined;
  });

  it('acme cannot hold more than its own cap; admin and globex still stream; closing one frees a slot', async () => {
    const { logger, lines } = capturingLogger();
    const { client } = await setUp({ logger });
    const acme = client('tenant-acme');
    const cap = DEFAULT_STREAM_QUOTA.perCaller;

    // acme asks for far more than its cap (the whole old global cap of 64).
    const { open, refused } = await openMany(acme, 'acme', 64);
    followers.push(...open);
    expect(open).toHaveLength(cap);
    expect(refused).toHaveLength(64 - cap);
    expect(exhausted(refused[0]!).message).toMatch(
      new RegExp(`CN=tenant-acme already has ${cap} open output streams, the most one caller may hold \\(${cap}\\)`),
    );
    expect(lines.some((l) => l.msg === 'output stream refused' && l.subject === 'CN=tenant-acme')).toBe(true);

    // Admin and another tenant are not locked out.
    const admin = follow(client('admin'), 'acme');
    const globex = follow(client('tenant-globex'), 'globex');
    followers.push(admin, globex);
    await waitFor(() => admin.lines.length > 0 && globex.lines.length > 0, 10_000, 'admin and globex to stream');
    expect(admin.lines[0]?.text).toBe('hello from acme');
    expect(globex.lines[0]?.text).toBe('hello from globex');

    // acme's next stream is refused ...
    const next = follow(acme, 'acme');
    await expect(next.done).rejects.toBeInstanceOf(ControlCallError);
    exhausted(next);

    // ... until it closes one of its own: then a new one opens.
    open[0]!.abort();
    await open[0]!.done;
    const again = await waitFor(
      async () => {
        const f = follow(acme, 'acme');
        await waitFor(() => f.lines.length > 0 || f.error() !== undefined, 10_000, 'the new stream to open or be refused');
        return f.lines.length > 0 ? f : undefined;
      },
      10_000,
      'a freed slot for acme',
    );
    followers.push(again);
    expect(again.lines[0]?.text).toBe('hello from acme');
  });

  it('tenants together cannot take the slots kept for admin; the total stays bounded', async () => {
    const { client } = await setUp({ streams: { total: 6, perCaller: 2, adminReserve: 2 } }, ['initech']);
    const a = await openMany(client('tenant-acme'), 'acme', 2);
    const g = await openMany(client('tenant-globex'), 'globex', 2);
    followers.push(...a.open, ...g.open);
    expect([a.open.length, g.open.length]).toEqual([2, 2]);

    // A third tenant, under its own cap, finds the tenant pool (6 - 2) full.
    const i = await openMany(client('tenant-initech'), 'initech', 1);
    expect(i.open).toHaveLength(0);
    expect(exhausted(i.refused[0]!).message).toMatch(/the 4 output streams tenants may share are all in use \(2 more are kept for admin\)/);

    // Admin gets the reserve, and not one stream more than the total.
    const admin = await openMany(client('admin'), 'initech', 3);
    followers.push(...admin.open);
    expect(admin.open).toHaveLength(2);
    expect(exhausted(admin.refused[0]!).message).toMatch(/all 6 output streams are in use/);
  });
});
