/**
 * Who is calling and what they may do.
 *
 * Identity is the subject of the verified client certificate, written
 * `CN=<common name>` (role tables may omit the `CN=`) (TLS already checked it chains to our CA and is within
 * its validity). Roles come from configuration, keyed by that subject:
 *   - `admin`: every method, every registration;
 *   - `tenant:<id>`: only registration `<id>`: it sees only itself in
 *     ListInstances/Health and may get, restart, query, read history and
 *     output of itself. It may not add or remove registrations (not even
 *     remove itself: enrolment is the operator's decision).
 * A caller naming any other registration gets PERMISSION_DENIED with the
 * same message whether that registration exists or not. Unknown subjects
 * are denied on every method.
 */
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { LauncherError } from '../errors.js';
import { RpcStatusError } from './status.js';
import { REGISTRATION_ID_PATTERN } from '../registration.js';

export type Role = { kind: 'admin' } | { kind: 'tenant'; registrationId: string };

export interface Caller {
  subject: string;
  role: Role;
}

export type RoleSpec = 'admin' | `tenant:${string}`;

export function parseRole(spec: string): Role {
  if (spec === 'admin') return { kind: 'admin' };
  const m = /^tenant:(.*)$/.exec(spec);
  if (m && REGISTRATION_ID_PATTERN.test(m[1] as string)) return { kind: 'tenant', registrationId: m[1] as string };
  throw new LauncherError('E_CONFIG', `invalid control API role ${JSON.stringify(spec)}: expected "admin" or "tenant:<registration id>"`);
}

export function formatRole(role: Role): string {
  return role.kind === 'admin' ? 'admin' : `tenant:${role.registrationId}`;
}

/**
 * Validate a roles table. Keys are certificate subjects, `CN=<name>` or just
 * `<name>` (as in launcher.yaml): `{"CN=admin": "admin", "tenant-acme": "tenant:acme"}`.
 */
export function parseRoles(roles: Record<string, string>): Map<string, Role> {
  const out = new Map<string, Role>();
  for (const [key, spec] of Object.entries(roles)) {
    const subject = key.startsWith('CN=') ? key : `CN=${key}`;
    if (!/^CN=[^,=+\n]+$/.test(subject)) {
      throw new LauncherError(
        'E_CONFIG',
        `invalid control API subject ${JSON.stringify(key)}: expected "<common name>" or "CN=<common name>"`,
      );
    }
    const role = parseRole(spec);
    const previous = out.get(subject);
    if (previous && formatRole(previous) !== formatRole(role)) {
      throw new LauncherError('E_CONFIG', `control API subject ${subject} has two roles: ${formatRole(previous)} and ${formatRole(role)}`);
    }
    out.set(subject, role);
  }
  return out;
}

/** `CN=<cn>` of a verified peer certificate, or undefined when there is none usable. */
export function subjectOf(cert: PeerCertificate | undefined): string | undefined {
  const cn: unknown = cert?.subject?.CN;
  if (typeof cn !== 'string' || cn === '') return undefined; // absent, or several CNs
  return `CN=${cn}`;
}

/** The part of a grpc-js server call that carries the TLS peer. */
export interface AuthenticatedCall {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

export type Access =
  /** Any known caller; the handler filters what it returns. */
  | { kind: 'any' }
  /** Admin, or the tenant owning `registrationId`. */
  | { kind: 'registration'; registrationId: string }
  | { kind: 'admin' };

export class Authorizer {
  private readonly roles: Map<string, Role>;

  constructor(roles: Record<string, string>) {
    this.roles = parseRoles(roles);
  }

  /** The verified certificate subject of a call on an mTLS connection; throws UNAUTHENTICATED. */
  subject(call: AuthenticatedCall): string {
    const subject = subjectOf(call.getAuthContext()?.sslPeerCertificate ?? undefined);
    if (!subject) throw new RpcStatusError(grpc.status.UNAUTHENTICATED, 'a verified client certificate with one common name is required');
    return subject;
  }

  /** The caller with its configured role; throws PERMISSION_DENIED for subjects without one. */
  caller(subject: string): Caller {
    const role = this.roles.get(subject);
    if (!role) throw new LauncherError('E_PERMISSION_DENIED', `${subject} has no role on this launcher`);
    return { subject, role };
  }

  /** Throws E_PERMISSION_DENIED when `caller` may not do `access`. */
  check(caller: Caller, access: Access): void {
    if (caller.role.kind === 'admin' || access.kind === 'any') return;
    if (access.kind === 'admin') {
      throw new LauncherError('E_PERMISSION_DENIED', `${caller.subject} (${formatRole(caller.role)}) may not do this: admin only`);
    }
    if (access.registrationId !== caller.role.registrationId) {
      // Deliberately independent of the requested id and of whether it exists.
      throw new LauncherError(
        'E_PERMISSION_DENIED',
        `${caller.subject} (${formatRole(caller.role)}) may only access registration '${caller.role.registrationId}'`,
      );
    }
  }

  /** Whether `caller` may see registration `id` (for filtering lists). */
  canSee(caller: Caller, id: string): boolean {
    return caller.role.kind === 'admin' || caller.role.registrationId === id;
  }
}
