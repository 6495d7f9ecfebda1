/**
 * `--extensions_require` (docs/protocol/osquery-extensions.md#extensions-require): for each comma-separated name, poll
 * every 20 ms: is an extension of that name registered, and does its socket
 * answer a ping? Only the first name gets the full --extensions_timeout; each
 * later name gets a single check (osquery#7256). The first unmet name ends
 * the wait; osqueryd logs it and carries on.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { extensionSocketPath } from '../osquery/socket-path.js';
import { extensionHealthy } from './extension-call.js';
import type { Registry } from './registry.js';

const POLL_MS = 20;

export function requiredNames(flag: string): string[] {
  return flag
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** undefined when every name is met, else the first unmet name. */
export async function waitForRequired(
  registry: Registry,
  managerPath: string,
  names: readonly string[],
  timeoutMs: number,
): Promise<string | undefined> {
  let waited = false;
  for (const name of names) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const uuid = [...registry.extensions()].find(([, info]) => info.name === name)?.[0];
      if (uuid !== undefined && (await extensionHealthy(extensionSocketPath(managerPath, uuid)))) break;
      if (waited || Date.now() >= deadline) return name;
      await sleep(POLL_MS);
    }
    waited = true;
  }
  return undefined;
}
