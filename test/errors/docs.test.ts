// docs/errors.md lists every error code, and an illegal state change is an
// internal error (E_INTERNAL → gRPC INTERNAL, logged), not the caller's fault.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LauncherError } from '../../src/errors.js';
import { statusOf } from '../../src/control/status.js';
import { StateMachine } from '../../src/runtime/instance/instance-state.js';
import { silentLogger } from '../../src/log/logger.js';

const repo = resolve(import.meta.dirname, '../..');

/** The members of the ErrorCode union, read from its source. */
function errorCodes(): string[] {
  const src = readFileSync(join(repo, 'src/errors.ts'), 'utf8');
  const union = /export type ErrorCode =([\s\S]*?);/.exec(src);
  expect(union).not.toBeNull();
  return [...union![1]!.matchAll(/'(E_[A-Z_]+)'/g)].map((m) => m[1]!);
}

describe('error codes', () => {
  // issue 21: there was no list of codes with causes and remedies.
  it('docs/errors.md has a row for every ErrorCode', () => {
    const doc = readFileSync(join(repo, 'docs/errors.md'), 'utf8');
    const codes = errorCodes();
    expect(codes.length).toBeGreaterThan(20);
    // Table cells may be padded (the formatter aligns columns).
    const missing = codes.filter((c) => !new RegExp(`\\|\\s*\`${c}\`\\s*\\|`).test(doc));
    expect(missing).toEqual([]);
    // And the other way: every code the table lists is a real one (a stale row fails too).
    const listed = [...doc.matchAll(/^\|\s*`(E_[A-Z_]+)`\s*\|/gm)].map((m) => m[1]!);
    expect(listed.filter((c) => !codes.includes(c))).toEqual([]);
  });

  // issue 21: an illegal state change became INVALID_ARGUMENT and was not logged as an error.
  it('an illegal instance state change is E_INTERNAL, served as INTERNAL and flagged for an error log', () => {
    const sm = new StateMachine(silentLogger());
    let thrown: unknown;
    try {
      sm.set('running'); // new → running skips starting/connecting
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(LauncherError);
    expect((thrown as LauncherError).code).toBe('E_INTERNAL');
    const st = statusOf(thrown);
    expect(st.code).toBe(grpc.status.INTERNAL);
    expect(st.unexpected).toBe(true);
    expect(st.details).toContain('illegal instance state change');
  });
});
