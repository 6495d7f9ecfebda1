/**
 * systemd readiness notification (sd_notify(3)) for `Type=notify` units.
 *
 * The protocol is one datagram on the AF_UNIX socket named by $NOTIFY_SOCKET,
 * which Node cannot send (no Unix datagram sockets in core, and we avoid a
 * native addon for it). We run systemd's own `systemd-notify` instead; since
 * the message then comes from a child process, the unit sets
 * `NotifyAccess=all`. systemd-notify (v246+) waits until systemd has
 * processed the message (a barrier), so the sender exiting right away does
 * not lose it.
 *
 * Outside systemd ($NOTIFY_SOCKET unset) or without systemd-notify this does
 * nothing and resolves false; it never throws: readiness reporting must not
 * take the supervisor down.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface SdNotifyOptions {
  env?: NodeJS.ProcessEnv;
  /** Path of systemd-notify; default: found on PATH, then /usr/bin, /bin. */
  binary?: string;
  timeoutMs?: number;
}

const KEY = /^[A-Z][A-Z0-9_]*$/;

function findBinary(env: NodeJS.ProcessEnv): string | undefined {
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/bin'];
  for (const dir of dirs) {
    const p = join(dir, 'systemd-notify');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/**
 * Send `fields` (e.g. `{ READY: '1', STATUS: '2 instances up' }`). Resolves
 * true when systemd-notify reported success.
 */
export function sdNotify(fields: Record<string, string>, options: SdNotifyOptions = {}): Promise<boolean> {
  const env = options.env ?? process.env;
  if (!env.NOTIFY_SOCKET) return Promise.resolve(false);
  const args: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    // One assignment per line in the datagram: a newline would inject another field.
    if (!KEY.test(key) || /[\n\0]/.test(value)) return Promise.resolve(false);
    args.push(`${key}=${value}`);
  }
  if (args.length === 0) return Promise.resolve(false);
  const binary = options.binary ?? findBinary(env);
  if (!binary) return Promise.resolve(false);
  return new Promise((resolve) => {
    execFile(binary, args, { env, timeout: options.timeoutMs ?? 10_000, killSignal: 'SIGKILL' }, (err) => resolve(err === null));
  });
}

/** READY=1, with a STATUS line when given. */
export function sdReady(status?: string, options?: SdNotifyOptions): Promise<boolean> {
  return sdNotify({ READY: '1', ...(status ? { STATUS: status } : {}) }, options);
}

/** STOPPING=1: shutdown has begun (systemctl shows "deactivating"). */
export function sdStopping(status?: string, options?: SdNotifyOptions): Promise<boolean> {
  return sdNotify({ STOPPING: '1', ...(status ? { STATUS: status } : {}) }, options);
}

/** STATUS=… only (shown by `systemctl status`). */
export function sdStatus(status: string, options?: SdNotifyOptions): Promise<boolean> {
  return sdNotify({ STATUS: status }, options);
}
