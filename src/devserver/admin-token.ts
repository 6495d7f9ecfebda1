/**
 * The dev server's admin token. `/admin/...` can queue a distributed query
 * into any tenant's osqueryd and read every tenant's logs, so it is not open
 * to every local user: each request carries `Authorization: Bearer <token>`.
 * A token rather than a 0600 Unix socket for the admin routes, because the
 * device RPC must stay on TCP for the extension, one listener keeps the URL
 * layout that curl, tests and benchmarks use, and the token file's mode
 * gives the same "only this user" rule (issue 13).
 *
 * The token is 32 random bytes (hex), written 0600 whatever the umask; it is
 * never logged or printed. Comparison is constant time over SHA-256 digests,
 * so neither the content nor the length leaks through timing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, renameSync, writeFileSync } from 'node:fs';
import { LauncherError, errorMessage } from '../errors.js';

export function generateAdminToken(): string {
  return randomBytes(32).toString('hex');
}

/** Write the token to `path`, mode 0600, replacing any previous file atomically. */
export function writeAdminTokenFile(path: string, token: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } catch (err) {
    throw new LauncherError('E_CONFIG', `cannot write the admin token file ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** True when an `Authorization` header value carries exactly this token. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  // Compare something in every case, so a missing header costs the same as a wrong one.
  const presented = m?.[1] ?? '';
  return timingSafeEqual(digest(presented), digest(token)) && m !== null;
}
