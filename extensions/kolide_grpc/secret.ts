/**
 * The enroll secret (reference §2.3): the configured value, else the file's
 * content with surrounding whitespace trimmed. A missing, unreadable or empty
 * source is a clear E_CONFIG error, never a crash.
 */
import { readFile } from 'node:fs/promises';
import { LauncherError, errorMessage } from '../../src/errors.js';

export async function readEnrollSecret(registrationId: string, value: string | undefined, path: string | undefined): Promise<string> {
  if (value !== undefined) {
    const secret = value.trim();
    if (secret === '') throw new LauncherError('E_CONFIG', `registration ${registrationId}: the enroll secret value is empty`);
    return secret;
  }
  if (path === undefined) {
    throw new LauncherError('E_CONFIG', `registration ${registrationId}: no enroll secret (neither a value nor a file is configured)`);
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new LauncherError('E_CONFIG', `registration ${registrationId}: cannot read enroll secret file ${path}: ${errorMessage(err)}`, { cause: err });
  }
  const secret = text.trim();
  if (secret === '') throw new LauncherError('E_CONFIG', `registration ${registrationId}: enroll secret file ${path} is empty`);
  return secret;
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
