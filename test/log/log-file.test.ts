// issue 18: <root>/supervisor.log is bounded (one rotation), private, and lines before the root exists are
// dropped without failing; the flare's scrubber replaces every known secret and PEM private-key blocks.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Scrubber } from '../../src/flare/redact.js';
import { journalPriority } from '../../src/log/journal.js';
import { BoundedLogFile } from '../../src/log/log-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('BoundedLogFile', () => {
  it('rotates past the cap into .1 and keeps at most two files, 0600', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lf-'));
    dirs.push(dir);
    const root = join(dir, 'root');
    const f = new BoundedLogFile(join(root, 'supervisor.log'), 1000);
    f.write('before the root exists\n');
    expect(f.dropped).toBe(1);
    mkdirSync(root);
    for (let i = 0; i < 100; i++) f.write(`${JSON.stringify({ i, pad: 'x'.repeat(40) })}\n`);
    f.close();
    const cur = readFileSync(join(root, 'supervisor.log'), 'utf8');
    const old = readFileSync(join(root, 'supervisor.log.1'), 'utf8');
    expect(statSync(join(root, 'supervisor.log')).mode & 0o777).toBe(0o600);
    expect(Buffer.byteLength(old)).toBeGreaterThanOrEqual(1000);
    expect(Buffer.byteLength(old)).toBeLessThan(1100);
    expect(Buffer.byteLength(cur)).toBeLessThan(1000);
    expect(cur.trim().split('\n').at(-1)).toContain('"i":99');
  });
});

describe('Scrubber', () => {
  it('replaces every known value, trimmed forms, PEM bodies line by line and whole PEM blocks', () => {
    const s = new Scrubber();
    s.add('enroll-secret-1\n');
    s.add('node-key-abcdef');
    s.add('abc'); // too short to search for: counted
    const pemBody = 'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg';
    s.add(`-----BEGIN PRIVATE KEY-----\n${pemBody}\n-----END PRIVATE KEY-----\n`);
    const out = s.scrub(
      `a enroll-secret-1 b node-key-abcdef c ${pemBody} d -----BEGIN EC PRIVATE KEY-----\nzzz\n-----END EC PRIVATE KEY----- e abc`,
    );
    expect(out).toBe('a [redacted] b [redacted] c [redacted] d [redacted] private key e abc');
    expect(s.tooShort).toBe(1);
    expect(s.replaced).toBe(4);
  });
});

describe('journalPriority', () => {
  it('maps pino levels to syslog priorities', () => {
    expect([10, 20, 30, 40, 50, 60].map(journalPriority)).toEqual([7, 7, 6, 4, 3, 2]);
  });
});
