/**
 * Per-registration enrollment state (docs/protocol/device.md#host-identifier, docs/protocol/device.md#store-keys): the node key the
 * device server issued and the host identifier UUID, generated once per
 * registration and kept across node-key changes and restarts.
 *
 * Writes go through the database's write queue (write-queue.ts). Until a
 * queued write committed (another process holds a lock), the record is kept
 * in memory, shared by every NodeKeyStore on the database, and reads return
 * it: a node key the device server issued is used at once and never asked
 * for twice because the disk was busy.
 */
import { randomUUID } from 'node:crypto';
import { ensureSchema, type SqliteDatabase } from './database.js';
import { LauncherError } from '../errors.js';
import { writesOf } from './write-queue.js';

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
    throw new LauncherError(
      'E_INVALID_REGISTRATION_ID',
      `registration id must be a non-empty string, got ${JSON.stringify(registrationId)}`,
    );
  }
}

/** Records written but not committed yet, per database: undefined = deleted. */
const unsaved = new WeakMap<object, Map<string, NodeKeyRecord | undefined>>();

export class NodeKeyStore {
  private readonly db: SqliteDatabase;
  private readonly unsaved: Map<string, NodeKeyRecord | undefined>;

  constructor(db: SqliteDatabase) {
    this.db = db;
    ensureSchema(db, 'node_keys', MIGRATIONS);
    let m = unsaved.get(db);
    if (!m) unsaved.set(db, (m = new Map()));
    this.unsaved = m;
  }

  /** Keep `rec` in memory and write it (upsert, or delete when undefined) through the queue. */
  private save(registrationId: string, rec: NodeKeyRecord | undefined, what: string): Promise<void> {
    this.unsaved.set(registrationId, rec);
    const write = (): void => {
      if (rec === undefined) {
        this.db.prepare('DELETE FROM node_keys_registrations WHERE registration_id = ?').run(registrationId);
      } else {
        this.db
          .prepare(
            `INSERT INTO node_keys_registrations (registration_id, host_identifier, node_key, munemo, enrolled_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(registration_id) DO UPDATE SET host_identifier = excluded.host_identifier, node_key = excluded.node_key,
               munemo = excluded.munemo, enrolled_at = excluded.enrolled_at, updated_at = excluded.updated_at`,
          )
          .run(registrationId, rec.hostIdentifier, rec.nodeKey ?? null, rec.munemo ?? null, rec.enrolledAt ?? null, Date.now());
      }
      if (this.unsaved.get(registrationId) === rec) this.unsaved.delete(registrationId);
    };
    return writesOf(this.db).run(`${what} of registration ${registrationId}`, write);
  }

  get(registrationId: string): NodeKeyRecord | undefined {
    if (this.unsaved.has(registrationId)) {
      const rec = this.unsaved.get(registrationId);
      return rec ? { ...rec } : undefined;
    }
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
    const rec = this.get(registrationId);
    if (rec && UUID.test(rec.hostIdentifier)) return rec.hostIdentifier.toLowerCase();
    const id = randomUUID();
    void this.save(
      registrationId,
      { registrationId, hostIdentifier: id, nodeKey: rec?.nodeKey, munemo: rec?.munemo, enrolledAt: rec?.enrolledAt },
      'saving the host identifier',
    );
    return id;
  }

  setNodeKey(registrationId: string, nodeKey: string, munemo?: string): Promise<void> {
    if (nodeKey === '') throw new LauncherError('E_INVALID_ARGUMENT', `empty node key for registration ${registrationId}`);
    const hostIdentifier = this.hostIdentifier(registrationId);
    return this.save(registrationId, { registrationId, hostIdentifier, nodeKey, munemo, enrolledAt: Date.now() }, 'saving the node key');
  }

  /** Forget the node key (re-enroll); the host identifier stays. */
  clearNodeKey(registrationId: string): Promise<void> {
    const rec = this.get(registrationId);
    if (!rec) return Promise.resolve();
    return this.save(registrationId, { ...rec, nodeKey: undefined, munemo: undefined, enrolledAt: undefined }, 'clearing the node key');
  }

  /** Forget the registration entirely, host identifier included. */
  remove(registrationId: string): Promise<void> {
    return this.save(registrationId, undefined, 'forgetting the enrollment');
  }

  list(): NodeKeyRecord[] {
    const ids = new Set(this.db.prepare('SELECT registration_id FROM node_keys_registrations').pluck().all() as string[]);
    for (const id of this.unsaved.keys()) ids.add(id);
    return [...ids]
      .sort()
      .map((id) => this.get(id))
      .filter((r): r is NodeKeyRecord => r !== undefined);
  }
}
