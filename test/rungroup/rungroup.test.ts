import { describe, expect, it } from 'vitest';
import { RunGroup, type Actor } from '../../src/rungroup/rungroup.js';
import { signalActor } from '../../src/rungroup/signal-actor.js';
import { waitFor } from '../runtime/helpers.js';

/** An actor that runs until interrupted, recording what happened to it. */
function blocking(name: string, log: string[]): Actor {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return {
    name,
    execute: async () => {
      await done;
      log.push(`${name} returned`);
    },
    interrupt: (err) => {
      log.push(`${name} interrupted${err ? `: ${err.message}` : ''}`);
      release();
    },
  };
}

describe('RunGroup', () => {
  it('resolves at once when empty', async () => {
    await expect(new RunGroup().run()).resolves.toBeUndefined();
  });

  it('interrupts every actor, the returned one too, when the first returns cleanly', async () => {
    const log: string[] = [];
    const g = new RunGroup();
    g.add(blocking('a', log));
    g.add({ name: 'quick', execute: async () => void log.push('quick returned'), interrupt: () => void log.push('quick interrupted') });
    g.add(blocking('b', log));
    await expect(g.run()).resolves.toBeUndefined();
    expect(log[0]).toBe('quick returned');
    expect(log).toContain('a interrupted');
    expect(log).toContain('b interrupted');
    expect(log).toContain('quick interrupted'); // interrupt after execute returned is allowed
    expect(log).toContain('a returned');
    expect(g.stragglers).toEqual([]);
  });

  it('rejects with the first error and passes it to every interrupt; later errors do not mask it', async () => {
    const log: string[] = [];
    const g = new RunGroup();
    g.add(blocking('a', log));
    g.add({ name: 'boom', execute: async () => Promise.reject(new Error('first')), interrupt: () => undefined });
    g.add({
      name: 'second',
      execute: () => new Promise((_, reject) => setTimeout(() => reject(new Error('second')), 1)),
      interrupt: () => undefined,
    });
    await expect(g.run()).rejects.toThrow('first');
    expect(log).toContain('a interrupted: first');
  });

  it('treats a synchronous throw in execute as that actor returning with an error', async () => {
    const log: string[] = [];
    const g = new RunGroup();
    g.add(blocking('a', log));
    g.add({
      name: 'sync',
      execute: () => {
        throw new Error('sync throw');
      },
      interrupt: () => undefined,
    });
    await expect(g.run()).rejects.toThrow('sync throw');
    expect(log).toContain('a returned');
  });

  it('names an actor whose interrupt hangs and one that never returns; E_TIMEOUT when the first return was clean', async () => {
    const g = new RunGroup({ interruptTimeoutMs: 50, executeReturnTimeoutMs: 50 });
    g.add({ name: 'done', execute: async () => undefined, interrupt: () => undefined });
    g.add({ name: 'stuck-interrupt', execute: () => new Promise(() => undefined), interrupt: () => new Promise(() => undefined) });
    g.add({ name: 'deaf', execute: () => new Promise(() => undefined), interrupt: () => undefined });
    const err = await g.run().then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('E_TIMEOUT');
    expect(err?.message).toContain('stuck-interrupt (interrupt)');
    expect(err?.message).toContain('deaf (execute)');
    expect(g.stragglers).toEqual([
      { name: 'stuck-interrupt', phase: 'interrupt' },
      { name: 'stuck-interrupt', phase: 'execute' },
      { name: 'deaf', phase: 'execute' },
    ]);
  });

  it('keeps the first error (not a timeout) when stragglers exist, and lists them', async () => {
    const g = new RunGroup({ interruptTimeoutMs: 20, executeReturnTimeoutMs: 20 });
    g.add({ name: 'fails', execute: async () => Promise.reject(new Error('cause')), interrupt: () => undefined });
    g.add({ name: 'deaf', execute: () => new Promise(() => undefined), interrupt: () => undefined });
    await expect(g.run()).rejects.toThrow('cause');
    expect(g.stragglers).toEqual([{ name: 'deaf', phase: 'execute' }]);
  });

  it('logs, not throws, an interrupt that throws', async () => {
    const log: string[] = [];
    const g = new RunGroup();
    g.add({
      name: 'done',
      execute: async () => undefined,
      interrupt: () => {
        throw new Error('bad interrupt');
      },
    });
    g.add(blocking('a', log));
    await expect(g.run()).resolves.toBeUndefined();
    expect(log).toContain('a returned');
  });

  it('refuses duplicate names and adding while running', async () => {
    const log: string[] = [];
    const g = new RunGroup();
    const a = blocking('a', log);
    g.add(a);
    expect(() => g.add(blocking('a', log))).toThrow(/already has an actor named a/);
    const running = g.run();
    expect(() => g.add(blocking('b', log))).toThrow(/already running/);
    a.interrupt();
    await running;
  });
});

describe('signalActor', () => {
  // Once a shutdown began, one process-wide escalation handler per signal stays (issue 13): a further
  // signal SIGKILLs every osqueryd group and exits. The actor's own handlers are removed.
  const baseline = process.listenerCount('SIGUSR2');
  it('ends the group with a SignalError on a real signal and swaps its handler for the escalation handler', async () => {
    const before = process.listenerCount('SIGUSR2');
    const log: string[] = [];
    const g = new RunGroup();
    g.add(signalActor(['SIGUSR2']));
    g.add(blocking('worker', log));
    const running = g.run();
    await waitFor('signal handler', () => process.listenerCount('SIGUSR2') === before + 1, 5_000, 5);
    process.kill(process.pid, 'SIGUSR2');
    const err = (await running.then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: string; signal?: string } | undefined;
    expect(err?.code).toBe('E_SHUTDOWN');
    expect(err?.signal).toBe('SIGUSR2');
    expect(log).toContain('worker interrupted: received SIGUSR2');
    expect(process.listenerCount('SIGUSR2')).toBe(baseline + 1);
  });

  it('removes its handlers when another actor ends the group (the escalation handler is not duplicated)', async () => {
    const g = new RunGroup();
    g.add(signalActor(['SIGUSR2']));
    g.add({ name: 'quick', execute: async () => undefined, interrupt: () => undefined });
    await g.run();
    expect(process.listenerCount('SIGUSR2')).toBe(baseline + 1);
  });

  it('returns at once when interrupted before execute', async () => {
    const a = signalActor(['SIGUSR2']);
    await a.interrupt();
    await expect(a.execute()).resolves.toBeUndefined();
  });
});
