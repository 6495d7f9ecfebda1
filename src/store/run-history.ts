/**
 * Run history: one row per osqueryd run (launch attempt), like launcher's
 * instance history (docs/protocol/device.md#instance-history) but per registration, in SQLite, with the
 * pid, exit code/signal and the binary used. The newest `keep` runs of each
 * registration are kept (launcher: 10 shared by every enrollment).
 *
 * A row is written when the launch starts, so a launch that fails before
 * osqueryd is even spawned still leaves a record with its error.
 *
 * Writes go through the database's write queue (write-queue.ts): while
 * another process holds a lock they wait, in order, without blocking the
 * event loop; each returns a promise callers may ignore.
 */
import { ensureSchema, type SqliteDatabase } from './database.js';
import { validateRegistrationId } from './registrations.js';
import { writesOf } from './write-queue.js';
import { retryBusy } from './busy.js';

export const DEFAULT_HISTORY_KEEP = 20;

export interface RunRecord {
  registrationId: string;
  runId: string;
  osquerydPath: string;
  /** From `osquery_info` once connected. */
  osquerydVersion?: string;
  instanceId?: string;
  pid?: number;
  limitsMode?: string;
  /** RFC 3339 UTC. */
  startedAt: string;
  connectedAt?: string;
  exitedAt?: string;
  exitCode?: number;
  exitSignal?: string;
  /** Why the run ended (absent for a requested stop). */
  error?: string;
}

const MIGRATIONS = [
  `CREATE TABLE run_history (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     registration_id TEXT NOT NULL,
     run_id TEXT NOT NULL UNIQUE,
     osqueryd_path TEXT NOT NULL,
     osqueryd_version TEXT,
     instance_id TEXT,
     pid INTEGER,
     limits_mode TEXT,
     started_at TEXT NOT NULL,
     connected_at TEXT,
     exited_at TEXT,
     exit_code INTEGER,
     exit_signal TEXT,
     error TEXT
   )`,
  'CREATE INDEX run_history_by_registration ON run_history (registration_id, seq)',
];

interface Row {
  registration_id: string;
  run_id: string;
  osqueryd_path: string;
  osqueryd_version: string | null;
  instance_id: string | null;
  pid: number | null;
  limits_mode: string | null;
  started_at: string;
  connected_at: string | null;
  exited_at: string | null;
  exit_code: number | null;
  exit_signal: string | null;
  error: string | null;
}

function fromRow(r: Row): RunRecord {
  const rec: RunRecord = { registrationId: r.registration_id, runId: r.run_id, osquerydPath: r.osqueryd_path, startedAt: r.started_at };
  if (r.osqueryd_version !== null) rec.osquerydVersion = r.osqueryd_version;
  if (r.instance_id !== null) rec.instanceId = r.instance_id;
  if (r.pid !== null) rec.pid = r.pid;
  if (r.limits_mode !== null) rec.limitsMode = r.limits_mode;
  if (r.connected_at !== null) rec.connectedAt = r.connected_at;
  if (r.exited_at !== null) rec.exitedAt = r.exited_at;
  if (r.exit_code !== null) rec.exitCode = r.exit_code;
  if (r.exit_signal !== null) rec.exitSignal = r.exit_signal;
  if (r.error !== null) rec.error = r.error;
  return rec;
}

const now = (): string => new Date().toISOString();

export class RunHistoryStore {
  private readonly db: SqliteDatabase;
  readonly keep: number;

  constructor(db: SqliteDatabase, options: { keep?: number } = {}) {
    this.db = db;
    this.keep = Math.max(1, options.keep ?? DEFAULT_HISTORY_KEEP);
    ensureSchema(db, 'run_history', MIGRATIONS);
  }

  /** A new run; drops the registration's runs beyond the newest `keep`. */
  start(rec: { registrationId: string; runId: string; osquerydPath: string; limitsMode?: string; startedAt?: string }): Promise<void> {
    validateRegistrationId(rec.registrationId);
    const startedAt = rec.startedAt ?? now();
    return this.write(`run history of ${rec.registrationId}: start of run ${rec.runId}`, () =>
      this.db
        .transaction(() => {
          this.db
            .prepare('INSERT INTO run_history (registration_id, run_id, osqueryd_path, limits_mode, started_at) VALUES (?, ?, ?, ?, ?)')
            .run(rec.registrationId, rec.runId, rec.osquerydPath, rec.limitsMode ?? null, startedAt);
          this.db
            .prepare(
              `DELETE FROM run_history WHERE registration_id = ? AND seq NOT IN
             (SELECT seq FROM run_history WHERE registration_id = ? ORDER BY seq DESC LIMIT ?)`,
            )
            .run(rec.registrationId, rec.registrationId, this.keep);
        })
        .immediate(),
    );
  }

  private write(what: string, fn: () => void): Promise<void> {
    return writesOf(this.db).run(what, fn);
  }

  setPid(runId: string, pid: number, limitsMode?: string): Promise<void> {
    return this.write(
      `run history: pid of run ${runId}`,
      () =>
        void this.db
          .prepare('UPDATE run_history SET pid = ?, limits_mode = COALESCE(?, limits_mode) WHERE run_id = ?')
          .run(pid, limitsMode ?? null, runId),
    );
  }

  setConnected(runId: string, info: { instanceId?: string; version?: string; at?: string } = {}): Promise<void> {
    const at = info.at ?? now();
    return this.write(
      `run history: connection of run ${runId}`,
      () =>
        void this.db
          .prepare('UPDATE run_history SET connected_at = ?, instance_id = ?, osqueryd_version = ? WHERE run_id = ?')
          .run(at, info.instanceId ?? null, info.version ?? null, runId),
    );
  }

  /** Record the end of a run; the first exit recorded wins. */
  setExited(runId: string, info: { code?: number | null; signal?: string | null; error?: string; at?: string } = {}): Promise<void> {
    const at = info.at ?? now();
    return this.write(
      `run history: exit of run ${runId}`,
      () =>
        void this.db
          .prepare('UPDATE run_history SET exited_at = ?, exit_code = ?, exit_signal = ?, error = ? WHERE run_id = ? AND exited_at IS NULL')
          .run(at, info.code ?? null, info.signal ?? null, info.error ?? null, runId),
    );
  }

  /**
   * Close every run without an exit time (the supervisor died under them);
   * returns how many. Called at start, after orphans were reaped.
   */
  async closeUnfinished(error: string): Promise<number> {
    return retryBusy(
      'run history: closing runs left open',
      () =>
        this.db.prepare('UPDATE run_history SET exited_at = ?, error = COALESCE(error, ?) WHERE exited_at IS NULL').run(now(), error)
          .changes,
      {
        budgetMs: writesOf(this.db).budgetMs,
      },
    );
  }

  get(runId: string): RunRecord | undefined {
    const row = this.db.prepare('SELECT * FROM run_history WHERE run_id = ?').get(runId) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /** Newest first. */
  list(registrationId: string, limit = this.keep): RunRecord[] {
    validateRegistrationId(registrationId);
    const rows = this.db
      .prepare('SELECT * FROM run_history WHERE registration_id = ? ORDER BY seq DESC LIMIT ?')
      .all(registrationId, Math.max(0, limit)) as Row[];
    return rows.map(fromRow);
  }

  removeRegistration(registrationId: string): Promise<void> {
    validateRegistrationId(registrationId);
    return this.write(
      `run history of ${registrationId}: removal`,
      () => void this.db.prepare('DELETE FROM run_history WHERE registration_id = ?').run(registrationId),
    );
  }
}
