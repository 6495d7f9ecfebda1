/**
 * Per-registration enrollment state (reference §2.2, §2.10): the node key the
 * device server issued and the host identifier UUID, generated once per
 * registration and kept across node-key changes and restarts.
 */
import { randomUUID } from 'node:crypto';
import { ensureSchema, type SqliteDatabase } from './database.js';
import { LauncherError } from '../errors.js';

const MIGRATIONS = [
  `CREATE TABLE node_keys_registrations (
     registration_id TEXT PRIMARY KEY,
     host_identifier TEXT NOT NULL,
     node_key TEXT,
     munemo TEXT,
     enrolled_at INTEGER,
     updated_at INTEGER NOT NULL
   )`,
];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface NodeKeyRecord {
  registrationId: string;
  hostIdentifier: string;
  nodeKey: string | undefined;
  munemo: string | undefined;
  /** ms since epoch of the last successful enrollment. */
  enrolledAt: number | undefined;
}

interface Row {
  registration_id: string;
  host_identifier: string;
  node_key: string | null;
  munemo: string | null;
  enrolled_at: number | null;
}

function checkId(registrationId: string): void {
  if (typeof registrationId !== 'string' || registrationId === '') {
    throw new LauncherError('E_INVALID_REGISTRATION_ID', `registration id must be a non-empty string, got ${JSON.stringify(registrationId)}`);
  }
}

export class NodeKeyStore {
  private readonly db: SqliteDatabase;

  constructor(db: SqliteDatabase) {
    this.db = db;
    ensureSchema(db, 'node_keys', MIGRATIONS);
  }

  get(registrationId: string): NodeKeyRecord | undefined {
    const row = this.db.prepare('SELECT * FROM node_keys_registrations WHERE registration_id = ?').get(registrationId) as Row | undefined;
    if (!row) return undefined;
    return {
      registrationId: row.registration_id,
      hostIdentifier: row.host_identifier,
      nodeKey: row.node_key ?? undefined,
      munemo: row.munemo ?? undefined,
      enrolledAt: row.enrolled_at ?? undefined,
    };
  }

  getNodeKey(registrationId: string): string | undefined {
    return this.get(registrationId)?.nodeKey;
  }

  /**
   * The registration's host identifier: the stored one when it is a UUID,
   * otherwise a new random v4 UUID (lowercase), saved before it is returned.
   */
  hostIdentifier(registrationId: string): string {
    checkId(registrationId);
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT host_identifier FROM node_keys_registrations WHERE registration_id = ?').get(registrationId) as
        | { host_identifier: string }
        | undefined;
      if (row && UUID.test(row.host_identifier)) return row.host_identifier.toLowerCase();
      const id = randomUUID();
      this.db
        .prepare(
          `INSERT INTO node_keys_registrations (registration_id, host_identifier, updated_at) VALUES (?, ?, ?)
           ON CONFLICT(registration_id) DO UPDATE SET host_identifier = excluded.host_identifier, updated_at = excluded.updated_at`,
        )
        .run(registrationId, id, Date.now());
      return id;
    })();
  }

  setNodeKey(registrationId: string, nodeKey: string, munemo?: string): void {
    if (nodeKey === '') throw new LauncherError('E_INVALID_ARGUMENT', `empty node key for registration ${registrationId}`);
    this.hostIdentifier(registrationId);
    const now = Date.now();
    this.db
      .prepare('UPDATE node_keys_registrations SET node_key = ?, munemo = ?, enrolled_at = ?, updated_at = ? WHERE registration_id = ?')
      .run(nodeKey, munemo ?? null, now, now, registrationId);
  }

  /** Forget the node key (re-enroll); the host identifier stays. */
  clearNodeKey(registrationId: string): void {
    this.db
      .prepare('UPDATE node_keys_registrations SET node_key = NULL, munemo = NULL, enrolled_at = NULL, updated_at = ? WHERE registration_id = ?')
      .run(Date.now(), registrationId);
  }

  /** Forget the registration entirely, host identifier included. */
  remove(registrationId: string): void {
    this.db.prepare('DELETE FROM node_keys_registrations WHERE registration_id = ?').run(registrationId);
  }

  list(): NodeKeyRecord[] {
    const ids = this.db.prepare('SELECT registration_id FROM node_keys_registrations ORDER BY registration_id').pluck().all() as string[];
    return ids.map((id) => this.get(id)!);
  }
}
