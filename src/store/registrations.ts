/**
 * Registrations: one row per tenant (plus the vendor) the supervisor keeps an
 * osqueryd for. A registration added at runtime is persisted here, so it comes
 * back after a supervisor restart (the Runner loads the table when it starts).
 *
 * The id is validated (src/registration.ts) before it is used anywhere.
 */
import { LauncherError } from '../errors.js';
import {
  REGISTRATION_ID_PATTERN,
  checkLimits,
  parseRegistrationId,
  disabledTablesProblem,
  isolationModeProblem,
  type DeploymentUrls,
  type IsolationSettings,
  type Limits,
  type Registration,
  type RegistrationId,
} from '../registration.js';
import { isBusy } from './busy.js';
import { ensureSchema, type SqliteDatabase } from './database.js';
import { writesOf } from './write-queue.js';

export { REGISTRATION_ID_PATTERN };
export type { DeploymentUrls, IsolationSettings, Registration };
/** The one shape of limits (src/registration.ts). */
export type ResourceLimits = Limits;

/** Throws E_INVALID_REGISTRATION_ID unless `id` obeys the id rule (src/registration.ts); returns it typed. */
export function validateRegistrationId(id: unknown): RegistrationId {
  return parseRegistrationId(id);
}

/** What the store accepts: the id is checked here (an entry point), so any string is taken. */
export type RegistrationInput = { id: string } & Partial<Omit<Registration, 'id' | 'createdAt' | 'disabledReason' | 'deployment'>>;

const MIGRATIONS = [
  `CREATE TABLE registrations (
     id TEXT PRIMARY KEY,
     enroll_secret TEXT,
     enroll_secret_path TEXT,
     limits_json TEXT NOT NULL DEFAULT '{}',
     osquery_flags_json TEXT NOT NULL DEFAULT '[]',
     created_at TEXT NOT NULL
   )`,
  // disable_device from the device server: kept, visible, not launched.
  `ALTER TABLE registrations ADD COLUMN disabled_reason TEXT`,
  // wrong_region / deployment_urls: where the backend moved this registration (issue 15).
  `ALTER TABLE registrations ADD COLUMN deployment_json TEXT`,
  // issue 22: isolation settings ({} or unset: defaults).
  `ALTER TABLE registrations ADD COLUMN isolation_json TEXT`,
];

interface Row {
  id: string;
  enroll_secret: string | null;
  enroll_secret_path: string | null;
  limits_json: string;
  osquery_flags_json: string;
  created_at: string;
  disabled_reason: string | null;
  deployment_json: string | null;
  isolation_json?: string | null;
}

/** Throws E_INVALID_ARGUMENT for limits outside the shared rules (src/registration.ts). */
export function validateLimits(id: string, limits: ResourceLimits): ResourceLimits {
  return checkLimits(`registration ${id}`, limits);
}

function fromRow(row: Row): Registration {
  const reg: Registration = {
    id: parseRegistrationId(row.id, 'stored registration id'),
    limits: JSON.parse(row.limits_json) as ResourceLimits,
    osqueryFlags: JSON.parse(row.osquery_flags_json) as string[],
    createdAt: row.created_at,
  };
  if (row.enroll_secret !== null) reg.enrollSecret = row.enroll_secret;
  if (row.enroll_secret_path !== null) reg.enrollSecretPath = row.enroll_secret_path;
  if (row.disabled_reason !== null && row.disabled_reason !== undefined) reg.disabledReason = row.disabled_reason;
  if (row.deployment_json) reg.deployment = JSON.parse(row.deployment_json) as DeploymentUrls;
  if (row.isolation_json) reg.isolation = JSON.parse(row.isolation_json) as IsolationSettings;
  return reg;
}

/** Id, limits and flags of an input, validated (E_INVALID_REGISTRATION_ID, E_INVALID_ARGUMENT). */
function checkedSettings(input: RegistrationInput): {
  id: RegistrationId;
  limits: ResourceLimits;
  flags: string[];
  isolation: IsolationSettings | undefined;
} {
  const id = validateRegistrationId(input.id);
  const limits = validateLimits(id, input.limits ?? {});
  const flags = input.osqueryFlags ?? [];
  if (!Array.isArray(flags) || flags.some((f) => typeof f !== 'string')) {
    throw new LauncherError('E_INVALID_ARGUMENT', `registration ${id}: osqueryFlags must be an array of strings`);
  }
  return { id, limits, flags, isolation: validateIsolation(id, input.isolation) };
}

/** Throws E_INVALID_ARGUMENT for isolation settings outside the shared rules; undefined when unset. */
export function validateIsolation(id: string, iso: IsolationSettings | undefined): IsolationSettings | undefined {
  if (iso === undefined) return undefined;
  const out: IsolationSettings = {};
  if (iso.mode !== undefined) {
    const p = isolationModeProblem(iso.mode);
    if (p) throw new LauncherError('E_INVALID_ARGUMENT', `registration ${id}: isolation.mode: ${p}`);
    out.mode = iso.mode;
  }
  if (iso.disableTables !== undefined) {
    const p = Array.isArray(iso.disableTables) ? disabledTablesProblem(iso.disableTables) : 'must be an array of table names';
    if (p) throw new LauncherError('E_INVALID_ARGUMENT', `registration ${id}: isolation.disable_tables: ${p}`);
    out.disableTables = [...iso.disableTables];
  }
  return out;
}

/**
 * The `registrations` table; every method validates the id first. Reads are
 * synchronous; writes go through the database's write queue (write-queue.ts),
 * so a lock held by another process delays them without blocking: await
 * written() before treating a change as durable.
 */
export class RegistrationStore {
  private readonly db: SqliteDatabase;
  private last: Promise<void> = Promise.resolve();

  constructor(db: SqliteDatabase) {
    this.db = db;
    ensureSchema(db, 'registrations', MIGRATIONS);
  }

  /** Resolves once this store's writes so far are committed; rejects with the error of one that was given up. */
  written(): Promise<void> {
    return this.last;
  }

  private write(what: string, fn: () => void): void {
    const p = writesOf(this.db).run(what, fn);
    const prev = this.last;
    this.last = prev.then(
      () => p,
      () => p,
    );
    this.last.catch(() => undefined);
  }

  /** Insert a new registration; E_ALREADY_EXISTS when the id is taken (at once, or from written() when the insert waited for a lock). */
  add(input: RegistrationInput): Registration {
    const { id, limits, flags, isolation } = checkedSettings(input);
    const reg: Registration = { id, limits, osqueryFlags: [...flags], createdAt: new Date().toISOString() };
    if (isolation) reg.isolation = isolation;
    if (input.enrollSecret !== undefined) reg.enrollSecret = input.enrollSecret;
    if (input.enrollSecretPath !== undefined) reg.enrollSecretPath = input.enrollSecretPath;
    this.write(`saving registration ${id}`, () => {
      try {
        this.db
          .prepare(
            `INSERT INTO registrations (id, enroll_secret, enroll_secret_path, limits_json, osquery_flags_json, created_at, isolation_json)
             VALUES (?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            id,
            reg.enrollSecret ?? null,
            reg.enrollSecretPath ?? null,
            JSON.stringify(limits),
            JSON.stringify(reg.osqueryFlags),
            reg.createdAt,
            isolation ? JSON.stringify(isolation) : null,
          );
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
          throw new LauncherError('E_ALREADY_EXISTS', `registration ${id} already exists`, { cause: err });
        }
        if (isBusy(err)) throw err;
        throw new LauncherError('E_STORE', `cannot insert registration ${id}: ${(err as Error).message}`, { cause: err });
      }
    });
    return reg;
  }

  get(id: string): Registration | undefined {
    validateRegistrationId(id);
    const row = this.db.prepare('SELECT * FROM registrations WHERE id = ?').get(id) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** Every registration, in the order they were added. */
  list(): Registration[] {
    return (this.db.prepare('SELECT * FROM registrations ORDER BY rowid').all() as Row[]).map(fromRow);
  }

  /** Mark a registration disabled (it stays, and is not launched); returns whether it exists. */
  setDisabled(id: string, reason: string | null): boolean {
    if (!this.get(id)) return false;
    this.write(
      `disabling registration ${id}`,
      () => void this.db.prepare('UPDATE registrations SET disabled_reason = ? WHERE id = ?').run(reason, id),
    );
    return true;
  }

  /**
   * Re-enroll: new secret, limits and flags for an existing registration
   * (created_at and the deployment URLs stay; a disable is lifted). E_NOT_FOUND when unknown.
   */
  update(input: RegistrationInput): Registration {
    const { id, limits, flags, isolation } = checkedSettings(input);
    const current = this.get(id);
    if (!current) throw new LauncherError('E_NOT_FOUND', `registration ${id} not found`);
    const reg: Registration = { id, limits, osqueryFlags: [...flags], createdAt: current.createdAt };
    if (isolation) reg.isolation = isolation;
    if (input.enrollSecret !== undefined) reg.enrollSecret = input.enrollSecret;
    if (input.enrollSecretPath !== undefined) reg.enrollSecretPath = input.enrollSecretPath;
    if (current.deployment) reg.deployment = current.deployment;
    this.write(`updating registration ${id}`, () => {
      this.db
        .prepare(
          `UPDATE registrations SET enroll_secret = ?, enroll_secret_path = ?, limits_json = ?, osquery_flags_json = ?, isolation_json = ?, disabled_reason = NULL WHERE id = ?`,
        )
        .run(
          reg.enrollSecret ?? null,
          reg.enrollSecretPath ?? null,
          JSON.stringify(limits),
          JSON.stringify(flags),
          isolation ? JSON.stringify(isolation) : null,
          id,
        );
    });
    return reg;
  }

  /** Record where the backend moved a registration (merged: empty values keep the stored ones); returns whether it exists. */
  setDeployment(id: string, urls: DeploymentUrls): boolean {
    validateRegistrationId(id);
    const current = this.get(id);
    if (!current) return false;
    const merged: DeploymentUrls = { ...current.deployment };
    for (const [k, v] of Object.entries(urls) as Array<[keyof DeploymentUrls, string | undefined]>) if (v) merged[k] = v;
    const json = JSON.stringify(merged);
    this.write(
      `saving device URLs of registration ${id}`,
      () => void this.db.prepare('UPDATE registrations SET deployment_json = ? WHERE id = ?').run(json, id),
    );
    return true;
  }

  /** Delete; returns whether a row was there. */
  remove(id: string): boolean {
    if (!this.get(id)) return false;
    this.write(`removing registration ${id}`, () => void this.db.prepare('DELETE FROM registrations WHERE id = ?').run(id));
    return true;
  }
}
