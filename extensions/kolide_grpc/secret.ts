/**
 * The enroll secret (docs/protocol/device.md#enroll-secret): the configured value, else the file's
 * content with surrounding whitespace trimmed. A missing, unreadable, empty,
 * oversized (> 16 KiB) or non-regular source is a clear E_CONFIG error, never
 * a crash or a hang.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { LauncherError, errorMessage } from '../../src/errors.js';
import { MAX_ENROLL_SECRET_BYTES } from '../../src/registration.js';

/** Largest enroll secret file read: the same rule as an inline secret (src/registration.ts). */
export const MAX_ENROLL_SECRET_FILE_BYTES = MAX_ENROLL_SECRET_BYTES;

export async function readEnrollSecret(registrationId: string, value: string | undefined, path: string | undefined): Promise<string> {
  if (value !== undefined) {
    const secret = value.trim();
    if (secret === '') throw new LauncherError('E_CONFIG', `registration ${registrationId}: the enroll secret value is empty`);
    return secret;
  }
  if (path === undefined) {
    throw new LauncherError('E_CONFIG', `registration ${registrationId}: no enroll secret (neither a value nor a file is configured)`);
  }
  const text = await readSecretFile(registrationId, path);
  const secret = text.trim();
  if (secret === '') throw new LauncherError('E_CONFIG', `registration ${registrationId}: enroll secret file ${path} is empty`);
  return secret;
}

/**
 * A regular file of at most MAX_ENROLL_SECRET_FILE_BYTES. Opened non-blocking
 * so a FIFO without a writer cannot hang the open, and checked before reading
 * so a FIFO or a device (/dev/zero) is refused instead of read forever.
 */
async function readSecretFile(registrationId: string, path: string): Promise<string> {
  const fail = (what: string, cause?: unknown) =>
    new LauncherError('E_CONFIG', `registration ${registrationId}: ${what}`, cause === undefined ? undefined : { cause });
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = await handle.stat();
    if (!st.isFile()) throw fail(`enroll secret file ${path} is not a regular file`);
    if (st.size > MAX_ENROLL_SECRET_FILE_BYTES) {
      throw fail(`enroll secret file ${path} is ${st.size} bytes, over the ${MAX_ENROLL_SECRET_FILE_BYTES}-byte limit`);
    }
    const buf = Buffer.alloc(MAX_ENROLL_SECRET_FILE_BYTES + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_ENROLL_SECRET_FILE_BYTES)
      throw fail(`enroll secret file ${path} is over the ${MAX_ENROLL_SECRET_FILE_BYTES}-byte limit`);
    return buf.subarray(0, bytesRead).toString('utf8');
  } catch (err) {
    if (err instanceof LauncherError) throw err;
    throw fail(`cannot read enroll secret file ${path}: ${errorMessage(err)}`, err);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** The `organization` claim of a JWT enroll secret, read unverified; undefined if absent. */
export function munemoOf(secret: string): string | undefined {
  const parts = secret.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    const org = (claims as { organization?: unknown } | null)?.organization;
    return typeof org === 'string' && org !== '' ? org : undefined;
  } catch {
    return undefined;
  }
}
