/**
 * How many StreamOutput calls may be open at once, per caller (issue 13).
 *
 * One global cap let one tenant holding every slot lock out admin and every
 * other tenant. Now:
 *   - a tenant (any non-admin subject) may hold at most `perCaller` streams;
 *   - tenants together may hold at most `total - adminReserve`, so the last
 *     `adminReserve` slots are always free for admin;
 *   - admin may use every slot up to `total` (tenants still get theirs
 *     while the total is not reached).
 * The total stays bounded. With the defaults (64 / 16 / 16) three tenants at
 * their cap still leave a tenant pool slot free, and admin 16 at least.
 */
import * as grpc from '@grpc/grpc-js';
import { LauncherError } from '../errors.js';
import type { Caller } from './authz.js';
import { RpcStatusError } from './status.js';

export interface StreamQuotaOptions {
  /** Every open stream, admin's included (default 64). */
  total?: number;
  /** Streams one tenant subject may hold (default 16). */
  perCaller?: number;
  /** Slots only admin may take (default 16). */
  adminReserve?: number;
}

export const DEFAULT_STREAM_QUOTA = { total: 64, perCaller: 16, adminReserve: 16 } as const;

export class StreamQuota {
  readonly total: number;
  readonly perCaller: number;
  readonly adminReserve: number;
  private open = 0;
  private tenantsOpen = 0;
  private readonly bySubject = new Map<string, number>();

  constructor(options: StreamQuotaOptions = {}) {
    this.total = options.total ?? DEFAULT_STREAM_QUOTA.total;
    this.adminReserve = options.adminReserve ?? Math.min(DEFAULT_STREAM_QUOTA.adminReserve, Math.floor(this.total / 4));
    this.perCaller = options.perCaller ?? Math.min(DEFAULT_STREAM_QUOTA.perCaller, this.total - this.adminReserve);
    const ok = (n: number, min: number) => Number.isInteger(n) && n >= min;
    if (
      !ok(this.total, 1) ||
      !ok(this.adminReserve, 0) ||
      !ok(this.perCaller, 1) ||
      this.adminReserve >= this.total ||
      this.perCaller > this.total - this.adminReserve
    ) {
      throw new LauncherError(
        'E_CONFIG',
        `output stream caps total=${this.total}, perCaller=${this.perCaller}, adminReserve=${this.adminReserve}: expected 0 <= adminReserve < total and 1 <= perCaller <= total - adminReserve`,
      );
    }
  }

  /** Streams open now (all callers). */
  get inUse(): number {
    return this.open;
  }

  /** Take a slot for `caller` or throw RESOURCE_EXHAUSTED saying which cap is full; returns its release. */
  acquire(caller: Caller): () => void {
    const own = this.bySubject.get(caller.subject) ?? 0;
    if (caller.role.kind === 'admin') {
      if (this.open >= this.total) this.exhausted(`all ${this.total} output streams are in use; close one and try again`);
    } else {
      if (own >= this.perCaller) {
        this.exhausted(
          `${caller.subject} already has ${own} open output streams, the most one caller may hold (${this.perCaller}); close one and try again`,
        );
      }
      const pool = this.total - this.adminReserve;
      if (this.tenantsOpen >= pool || this.open >= this.total) {
        this.exhausted(
          `the ${pool} output streams tenants may share are all in use (${this.adminReserve} more are kept for admin); try again later`,
        );
      }
    }
    const tenant = caller.role.kind !== 'admin';
    this.open++;
    if (tenant) this.tenantsOpen++;
    this.bySubject.set(caller.subject, own + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open--;
      if (tenant) this.tenantsOpen--;
      const left = (this.bySubject.get(caller.subject) ?? 1) - 1;
      if (left === 0) this.bySubject.delete(caller.subject);
      else this.bySubject.set(caller.subject, left);
    };
  }

  private exhausted(message: string): never {
    throw new RpcStatusError(grpc.status.RESOURCE_EXHAUSTED, message);
  }
}
