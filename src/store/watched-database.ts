/**
 * The supervisor's database, watched (issue 13): `launcher.sqlite` deleted
 * while the supervisor runs would otherwise go unnoticed (the open
 * connection keeps writing into the unlinked file) and a restart would find
 * no registrations, node keys or history. The file's identity (dev, ino) is
 * checked on a bounded, unref'd timer and whenever checkNow() is called (on
 * a failed write); when the file is gone, an error is logged and the still
 * open connection is copied (SQLite's online backup: registrations incl.
 * runtime-enrolled ones, node keys, run history, cached configs, buffered
 * logs) into a new file at the same path, which becomes the connection every
 * store uses from then on.
 *
 * Checkpoints run in a worker thread (checkpointer.ts), off the event loop.
 * With `backupDir`, the file passes quick_check before it is opened and a
 * corrupt one is replaced by the newest sound backup (integrity.ts, issue
 * 19); free pages are given back to the file system in small steps
 * (reclaim.ts).
 *
 * Stores keep working on the same `SqliteDatabase` value: it is a proxy that
 * forwards to the current connection (statements are prepared per call, and
 * the log buffer keys its cached statements by connectionOf()).
 */
import { renameSync, rmSync, statSync } from 'node:fs';
import { errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log/logger.js';
import { startCheckpointer, type Checkpointer } from './checkpointer.js';
import { openDatabase, restrictDatabaseFiles, type SqliteDatabase } from './database.js';
import { checkBeforeOpen, type IntegrityReport } from './integrity.js';
import { ensureIncrementalVacuum, startReclaimer, type ReclaimOptions } from './reclaim.js';

const CONNECTION = Symbol('connection');

/** The connection behind `db` now (itself for a plain database). */
export function connectionOf(db: SqliteDatabase): SqliteDatabase {
  return (db as unknown as Record<symbol, SqliteDatabase | undefined>)[CONNECTION] ?? db;
}

export interface WatchedDatabaseOptions {
  logger?: Logger;
  /** How often the file's identity is checked (ms). Default 2000. */
  checkIntervalMs?: number;
  /** Check the file at open and restore the newest sound backup from here when it is corrupt (issue 19). */
  backupDir?: string;
  reclaim?: ReclaimOptions;
}

export interface WatchedDatabase {
  /** Use this everywhere: it always reaches the current connection. */
  readonly db: SqliteDatabase;
  readonly path: string;
  /** Times the file was found missing and recreated. */
  readonly recreated: number;
  /** What the integrity check at open found (outcome "ok" without `backupDir`). */
  readonly integrity: IntegrityReport;
  /** Check the file now (call after a write failed); resolves when any recreation finished. */
  checkNow(): Promise<void>;
  /** Stop the watch and the checkpoint worker, close the connection. */
  close(): Promise<void>;
}

interface Identity {
  dev: number;
  ino: number;
}

function identity(path: string): Identity | undefined {
  try {
    const s = statSync(path);
    return { dev: s.dev, ino: s.ino };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export function openWatchedDatabase(path: string, options: WatchedDatabaseOptions = {}): WatchedDatabase {
  const log = options.logger ?? silentLogger();
  const checkpointed = (conn: SqliteDatabase): Checkpointer =>
    startCheckpointer(conn, path, {
      onError: (err) => log.warn({ path, err: errorMessage(err) }, 'checkpoint worker failed; SQLite checkpoints on commit again'),
    });
  const integrity: IntegrityReport = options.backupDir !== undefined ? checkBeforeOpen(path, options.backupDir) : { outcome: 'ok', path };
  let current = openDatabase(path);
  ensureIncrementalVacuum(current, path, log);
  let checkpointer = checkpointed(current);
  let known = identity(path);
  let recreated = 0;
  let closed = false;
  let checking: Promise<void> | undefined;

  const db = new Proxy({} as SqliteDatabase, {
    get(_target, prop) {
      if (prop === CONNECTION) return current;
      const v = Reflect.get(current, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(current) : v;
    },
  });

  /** Make `next` the connection every store uses; close the old one and its checkpoint worker. */
  const switchTo = async (next: SqliteDatabase): Promise<void> => {
    const old = current;
    const oldCheckpointer = checkpointer;
    current = next;
    known = identity(path);
    checkpointer = checkpointed(next);
    await oldCheckpointer.stop();
    try {
      old.close();
    } catch {
      // the unlinked file's connection; nothing left to keep
    }
  };

  const recreate = async (): Promise<void> => {
    log.error(
      { path },
      'the supervisor database file was deleted while running; recreating it from the open connection (registrations, node keys, history, configs, buffered logs)',
    );
    const tmp = `${path}.restore-${process.pid}`;
    rmSync(tmp, { force: true });
    await current.backup(tmp);
    if (closed) return rmSync(tmp, { force: true });
    if (identity(path) !== undefined) {
      rmSync(tmp, { force: true });
      log.error({ path }, 'a new database file appeared at the path while recreating; keeping it and switching to it');
    } else {
      renameSync(tmp, path);
    }
    await switchTo(openDatabase(path));
    restrictDatabaseFiles(path);
    recreated++;
    log.warn({ path }, 'supervisor database recreated; writes continue in the new file');
  };

  const checkNow = (): Promise<void> => {
    if (closed) return Promise.resolve();
    if (checking) return checking;
    const run = async (): Promise<void> => {
      try {
        const now = identity(path);
        if (now !== undefined && known !== undefined && now.dev === known.dev && now.ino === known.ino) return;
        if (now !== undefined && known !== undefined) {
          log.error({ path }, 'the supervisor database file was replaced while running; switching to the new file');
          await switchTo(openDatabase(path));
          return;
        }
        await recreate();
      } catch (err) {
        log.error({ path, err: errorMessage(err) }, 'cannot recreate the supervisor database; will retry');
      }
    };
    // Cleared in a later turn: a check that finished synchronously must not stay "in progress".
    checking = run().finally(() => (checking = undefined));
    return checking;
  };

  const timer = setInterval(() => void checkNow(), Math.max(50, options.checkIntervalMs ?? 2000));
  timer.unref();
  const stopReclaimer = startReclaimer(db, log, options.reclaim);

  return {
    db,
    path,
    get recreated() {
      return recreated;
    },
    integrity,
    checkNow,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      stopReclaimer();
      await checking;
      await checkpointer.stop();
      current.close();
    },
  };
}
