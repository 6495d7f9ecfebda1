/**
 * The dev server's SQLite state: tenants with their enroll secrets and
 * config, node keys issued per (tenant, host identifier), a per-tenant queue
 * of distributed queries (each delivered once to each node), and the logs
 * and results nodes sent.
 */
import { randomBytes } from 'node:crypto';
import { ensureSchema, type SqliteDatabase } from '../store/database.js';
import { LauncherError } from '../errors.js';

const MIGRATIONS = [
  `CREATE TABLE devserver_tenants (name TEXT PRIMARY KEY, config TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
   CREATE TABLE devserver_secrets (secret TEXT PRIMARY KEY, tenant TEXT NOT NULL REFERENCES devserver_tenants(name) ON DELETE CASCADE);
   CREATE TABLE devserver_nodes (
     node_key TEXT PRIMARY KEY, tenant TEXT NOT NULL, host_identifier TEXT NOT NULL, details TEXT NOT NULL,
     enrolled_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
   CREATE INDEX devserver_nodes_host ON devserver_nodes (tenant, host_identifier);
   CREATE TABLE devserver_queries (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, name TEXT NOT NULL UNIQUE, sql TEXT NOT NULL, created_at INTEGER NOT NULL);
   CREATE TABLE devserver_deliveries (query_id INTEGER NOT NULL, node_key TEXT NOT NULL, delivered_at INTEGER NOT NULL, PRIMARY KEY (query_id, node_key));
   CREATE TABLE devserver_logs (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, node_key TEXT NOT NULL, host_identifier TEXT NOT NULL,
     log_type INTEGER NOT NULL, data TEXT NOT NULL, received_at INTEGER NOT NULL);
   CREATE INDEX devserver_logs_tenant ON devserver_logs (tenant, log_type, id);
   CREATE TABLE devserver_results (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, node_key TEXT NOT NULL, host_identifier TEXT NOT NULL,
     query_name TEXT NOT NULL, status INTEGER NOT NULL, rows TEXT NOT NULL, stats TEXT NOT NULL, message TEXT NOT NULL, received_at INTEGER NOT NULL)`,
];

export const DEFAULT_TENANT_CONFIG = JSON.stringify({
  options: { logger_snapshot_event_type: true },
  schedule: { uptime: { query: 'select * from uptime', interval: 60 } },
});

export interface TenantSpec {
  name: string;
  secrets: string[];
  /** osquery config JSON text. */
  config?: string;
}

export interface NodeRecord {
  nodeKey: string;
  tenant: string;
  hostIdentifier: string;
  details: Record<string, unknown>;
  enrolledAt: number;
  revoked: boolean;
}

export interface StoredLog {
  id: number;
  tenant: string;
  hostIdentifier: string;
  logType: number;
  data: string;
  receivedAt: number;
}

export interface StoredResult {
  id: number;
  tenant: string;
  hostIdentifier: string;
  queryName: string;
  status: number;
  rows: unknown;
  stats: unknown;
  message: string;
  receivedAt: number;
}

export interface LogFilter {
  tenant?: string;
  /** 0 (result) or 4 (status). */
  logType?: number;
  hostIdentifier?: string;
  /** Only ids greater than this. */
  afterId?: number;
}

export interface ResultFilter {
  tenant?: string;
  queryName?: string;
  hostIdentifier?: string;
}

export interface IncomingResult {
  query_name: string;
  status: number;
  rows: unknown;
  stats: unknown;
  message: string;
}

function nonEmpty(what: string, v: string): void {
  if (typeof v !== 'string' || v === '') throw new LauncherError('E_INVALID_ARGUMENT', `dev server: ${what} must be a non-empty string`);
}

/** The `WHERE` terms (and their bound values) of the filters that are set; undefined ones are left out. */
function whereClause(terms: ReadonlyArray<readonly [string, unknown]>): { where: string[]; args: unknown[] } {
  const set = terms.filter(([, v]) => v !== undefined);
  return { where: set.map(([sql]) => sql), args: set.map(([, v]) => v) };
}

export class DevServerStore {
  readonly db: SqliteDatabase;

  constructor(db: SqliteDatabase) {
    this.db = db;
    ensureSchema(db, 'devserver', MIGRATIONS);
  }

  /** Create or update a tenant; its secrets are added (existing ones kept). */
  upsertTenant(spec: TenantSpec): void {
    nonEmpty('tenant name', spec.name);
    if (spec.config !== undefined) this.checkConfig(spec.config);
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO devserver_tenants (name, config) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET config = coalesce(?, config)')
        .run(spec.name, spec.config ?? DEFAULT_TENANT_CONFIG, spec.config ?? null);
      for (const secret of spec.secrets) {
        nonEmpty('enroll secret', secret);
        const owner = this.db.prepare('SELECT tenant FROM devserver_secrets WHERE secret = ?').pluck().get(secret) as string | undefined;
        if (owner !== undefined && owner !== spec.name) {
          throw new LauncherError('E_ALREADY_EXISTS', `dev server: enroll secret already belongs to tenant ${owner}`);
        }
        this.db.prepare('INSERT OR IGNORE INTO devserver_secrets (secret, tenant) VALUES (?, ?)').run(secret, spec.name);
      }
    })();
  }

  tenants(): Array<{ name: string; disabled: boolean; secrets: number }> {
    return (
      this.db
        .prepare(
          'SELECT t.name, t.disabled, (SELECT count(*) FROM devserver_secrets s WHERE s.tenant = t.name) AS secrets FROM devserver_tenants t ORDER BY t.name',
        )
        .all() as Array<{ name: string; disabled: number; secrets: number }>
    ).map((r) => ({ name: r.name, disabled: r.disabled === 1, secrets: r.secrets }));
  }

  tenantOfSecret(secret: string): string | undefined {
    return this.db.prepare('SELECT tenant FROM devserver_secrets WHERE secret = ?').pluck().get(secret) as string | undefined;
  }

  private checkConfig(config: string): void {
    try {
      JSON.parse(config);
    } catch {
      throw new LauncherError('E_INVALID_ARGUMENT', `dev server: config is not JSON text: ${config.slice(0, 60)}`);
    }
  }

  private requireTenant(tenant: string): void {
    const found = this.db.prepare('SELECT 1 FROM devserver_tenants WHERE name = ?').get(tenant);
    if (!found) throw new LauncherError('E_NOT_FOUND', `dev server: no tenant ${JSON.stringify(tenant)}`);
  }

  setConfig(tenant: string, config: string): void {
    this.requireTenant(tenant);
    this.checkConfig(config);
    this.db.prepare('UPDATE devserver_tenants SET config = ? WHERE name = ?').run(config, tenant);
  }

  config(tenant: string): string {
    this.requireTenant(tenant);
    return this.db.prepare('SELECT config FROM devserver_tenants WHERE name = ?').pluck().get(tenant) as string;
  }

  setDisabled(tenant: string, disabled: boolean): void {
    this.requireTenant(tenant);
    this.db.prepare('UPDATE devserver_tenants SET disabled = ? WHERE name = ?').run(disabled ? 1 : 0, tenant);
  }

  isDisabled(tenant: string): boolean {
    return this.db.prepare('SELECT disabled FROM devserver_tenants WHERE name = ?').pluck().get(tenant) === 1;
  }

  /** A new node key for (tenant, host); earlier keys of that pair are revoked. */
  issueNodeKey(tenant: string, hostIdentifier: string, details: unknown): string {
    const key = `${tenant}::${randomBytes(24).toString('base64url')}`;
    this.db.transaction(() => {
      this.db.prepare('UPDATE devserver_nodes SET revoked = 1 WHERE tenant = ? AND host_identifier = ?').run(tenant, hostIdentifier);
      this.db
        .prepare('INSERT INTO devserver_nodes (node_key, tenant, host_identifier, details, enrolled_at) VALUES (?, ?, ?, ?, ?)')
        .run(key, tenant, hostIdentifier, JSON.stringify(details ?? {}), Date.now());
    })();
    return key;
  }

  /** The live node behind a key, or undefined (unknown or revoked). */
  node(nodeKey: string): NodeRecord | undefined {
    const row = this.db.prepare('SELECT * FROM devserver_nodes WHERE node_key = ? AND revoked = 0').get(nodeKey) as
      | { node_key: string; tenant: string; host_identifier: string; details: string; enrolled_at: number; revoked: number }
      | undefined;
    if (!row) return undefined;
    return {
      nodeKey: row.node_key,
      tenant: row.tenant,
      hostIdentifier: row.host_identifier,
      details: JSON.parse(row.details) as Record<string, unknown>,
      enrolledAt: row.enrolled_at,
      revoked: row.revoked === 1,
    };
  }

  nodes(tenant?: string): NodeRecord[] {
    const keys = (
      tenant === undefined
        ? this.db.prepare('SELECT node_key FROM devserver_nodes WHERE revoked = 0 ORDER BY enrolled_at').pluck().all()
        : this.db.prepare('SELECT node_key FROM devserver_nodes WHERE revoked = 0 AND tenant = ? ORDER BY enrolled_at').pluck().all(tenant)
    ) as string[];
    return keys.map((k) => this.node(k)!);
  }

  /** Revoke node keys: one key, a tenant's, or all. Returns how many. */
  revoke(filter: { nodeKey?: string; tenant?: string } = {}): number {
    if (filter.nodeKey !== undefined)
      return this.db.prepare('UPDATE devserver_nodes SET revoked = 1 WHERE node_key = ? AND revoked = 0').run(filter.nodeKey).changes;
    if (filter.tenant !== undefined)
      return this.db.prepare('UPDATE devserver_nodes SET revoked = 1 WHERE tenant = ? AND revoked = 0').run(filter.tenant).changes;
    return this.db.prepare('UPDATE devserver_nodes SET revoked = 1 WHERE revoked = 0').run().changes;
  }

  /** Queue a distributed query for every node of a tenant; returns its name. */
  addQuery(tenant: string, sql: string, name?: string): string {
    this.requireTenant(tenant);
    nonEmpty('query sql', sql);
    return this.db.transaction(() => {
      const info = this.db
        .prepare('INSERT INTO devserver_queries (tenant, name, sql, created_at) VALUES (?, ?, ?, ?)')
        .run(tenant, name ?? `pending-${randomBytes(6).toString('hex')}`, sql, Date.now());
      const id = Number(info.lastInsertRowid);
      if (name === undefined) {
        const generated = `devq_${id}`;
        this.db.prepare('UPDATE devserver_queries SET name = ? WHERE id = ?').run(generated, id);
        return generated;
      }
      return name;
    })();
  }

  /** Queries of the node's tenant it has not received yet; marks them delivered. */
  takeQueries(node: NodeRecord): Record<string, string> {
    return this.db.transaction(() => {
      const rows = this.db
        .prepare(
          `SELECT q.id, q.name, q.sql FROM devserver_queries q
           WHERE q.tenant = ? AND NOT EXISTS (SELECT 1 FROM devserver_deliveries d WHERE d.query_id = q.id AND d.node_key = ?)
           ORDER BY q.id`,
        )
        .all(node.tenant, node.nodeKey) as Array<{ id: number; name: string; sql: string }>;
      const mark = this.db.prepare('INSERT INTO devserver_deliveries (query_id, node_key, delivered_at) VALUES (?, ?, ?)');
      const out: Record<string, string> = {};
      for (const r of rows) {
        mark.run(r.id, node.nodeKey, Date.now());
        out[r.name] = r.sql;
      }
      return out;
    })();
  }

  addLogs(node: NodeRecord, logType: number, logs: readonly string[]): void {
    const insert = this.db.prepare(
      'INSERT INTO devserver_logs (tenant, node_key, host_identifier, log_type, data, received_at) VALUES (?, ?, ?, ?, ?, ?)',
    );
    const now = Date.now();
    this.db.transaction(() => {
      for (const data of logs) insert.run(node.tenant, node.nodeKey, node.hostIdentifier, logType, data, now);
    })();
  }

  addResults(node: NodeRecord, results: readonly IncomingResult[]): void {
    const insert = this.db.prepare(
      'INSERT INTO devserver_results (tenant, node_key, host_identifier, query_name, status, rows, stats, message, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const now = Date.now();
    this.db.transaction(() => {
      for (const r of results) {
        insert.run(
          node.tenant,
          node.nodeKey,
          node.hostIdentifier,
          r.query_name,
          r.status,
          JSON.stringify(r.rows ?? null),
          JSON.stringify(r.stats ?? null),
          r.message,
          now,
        );
      }
    })();
  }

  logs(filter: LogFilter = {}): StoredLog[] {
    const { where, args } = whereClause([
      ['tenant = ?', filter.tenant],
      ['log_type = ?', filter.logType],
      ['host_identifier = ?', filter.hostIdentifier],
      ['id > ?', filter.afterId],
    ]);
    const sql = `SELECT id, tenant, host_identifier AS hostIdentifier, log_type AS logType, data, received_at AS receivedAt FROM devserver_logs
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`;
    return this.db.prepare(sql).all(...args) as StoredLog[];
  }

  logCount(filter: Omit<LogFilter, 'afterId'> = {}): number {
    const { where, args } = whereClause([
      ['tenant = ?', filter.tenant],
      ['log_type = ?', filter.logType],
      ['host_identifier = ?', filter.hostIdentifier],
    ]);
    return this.db
      .prepare(`SELECT count(*) FROM devserver_logs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}`)
      .pluck()
      .get(...args) as number;
  }

  resultCount(): number {
    return this.db.prepare('SELECT count(*) FROM devserver_results').pluck().get() as number;
  }

  results(filter: ResultFilter = {}): StoredResult[] {
    const { where, args } = whereClause([
      ['tenant = ?', filter.tenant],
      ['query_name = ?', filter.queryName],
      ['host_identifier = ?', filter.hostIdentifier],
    ]);
    const rows = this.db
      .prepare(
        `SELECT id, tenant, host_identifier, query_name, status, rows, stats, message, received_at FROM devserver_results
         ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`,
      )
      .all(...args) as Array<{
      id: number;
      tenant: string;
      host_identifier: string;
      query_name: string;
      status: number;
      rows: string;
      stats: string;
      message: string;
      received_at: number;
    }>;
    return rows.map((r) => ({
      id: r.id,
      tenant: r.tenant,
      hostIdentifier: r.host_identifier,
      queryName: r.query_name,
      status: r.status,
      rows: JSON.parse(r.rows) as unknown,
      stats: JSON.parse(r.stats) as unknown,
      message: r.message,
      receivedAt: r.received_at,
    }));
  }
}
