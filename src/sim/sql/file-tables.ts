/**
 * The stand-in's `file` and `hash` tables (issue 22), with osquery's Linux
 * columns, read from the real filesystem as osqueryd would: `path` and
 * `directory` equality constraints select what is read (no constraint, no
 * rows, as in osquery); a path that cannot be read gives no row.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ColumnOptions, equalityValues } from '../../osquery/plugins.js';
import type { GeneratedRow, TableProvider } from './engine.js';
import type { TableContext } from './constraints.js';
import type { ColumnSpec } from './schema.js';

/** Bound on entries listed per directory constraint. */
const MAX_DIRECTORY_ENTRIES = 10_000;
/** Files larger than this are not hashed (osquery skips huge files too). */
const MAX_HASH_BYTES = 64 * 1024 * 1024;

function columns(cols: Array<[string, string, number?]>): ColumnSpec[] {
  return cols.map(([name, type, options = 0]) => ({ name, type, options }));
}

function fileType(st: Stats): string {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'regular';
  if (st.isSocket()) return 'socket';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'character';
  if (st.isBlockDevice()) return 'block';
  return 'unknown';
}

/** The paths a query asks for: each `path = …`, and every entry of each `directory = …`. */
function targets(ctx: TableContext): string[] {
  const out = [...(equalityValues(ctx, 'path') ?? [])];
  for (const dir of equalityValues(ctx, 'directory') ?? []) {
    try {
      out.push(
        ...readdirSync(dir)
          .slice(0, MAX_DIRECTORY_ENTRIES)
          .map((e) => join(dir, e)),
      );
    } catch {
      // unreadable or absent: no rows, as osquery
    }
  }
  return out;
}

function fileRow(path: string): GeneratedRow | undefined {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return undefined;
  }
  const link = st.isSymbolicLink();
  let target = st;
  if (link) {
    try {
      target = statSync(path);
    } catch {
      // dangling link: report the link itself
    }
  }
  return {
    path,
    directory: dirname(path),
    filename: basename(path),
    inode: target.ino,
    uid: target.uid,
    gid: target.gid,
    mode: (target.mode & 0o7777).toString(8).padStart(4, '0'),
    device: target.rdev,
    size: target.size,
    block_size: target.blksize,
    atime: Math.floor(target.atimeMs / 1000),
    mtime: Math.floor(target.mtimeMs / 1000),
    ctime: Math.floor(target.ctimeMs / 1000),
    btime: Math.floor(target.birthtimeMs / 1000),
    hard_links: target.nlink,
    symlink: link ? 1 : 0,
    symlink_target_path: link ? safeReadlink(path) : '',
    type: fileType(target),
  };
}

function safeReadlink(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

function hashRow(path: string): GeneratedRow | undefined {
  try {
    const st = statSync(path);
    if (!st.isFile() || st.size > MAX_HASH_BYTES) return undefined;
    const data = readFileSync(path);
    const digest = (alg: string) => createHash(alg).update(data).digest('hex');
    return { path, directory: dirname(path), md5: digest('md5'), sha1: digest('sha1'), sha256: digest('sha256') };
  } catch {
    return undefined;
  }
}

function rowsOf(ctx: TableContext, read: (path: string) => GeneratedRow | undefined): GeneratedRow[] {
  const rows: GeneratedRow[] = [];
  for (const p of targets(ctx)) {
    const row = read(p);
    if (row) rows.push(row);
  }
  return rows;
}

export function fileTables(): TableProvider[] {
  const T = 'TEXT';
  const B = 'BIGINT';
  const I = 'INTEGER';
  // osquery marks both required; either one is enough, and with neither there are no rows (targets()).
  const R = ColumnOptions.INDEX;
  return [
    {
      spec: {
        name: 'file',
        columns: columns([
          ['path', T, R],
          ['directory', T, R],
          ['filename', T],
          ['inode', B],
          ['uid', B],
          ['gid', B],
          ['mode', T],
          ['device', B],
          ['size', B],
          ['block_size', I],
          ['atime', B],
          ['mtime', B],
          ['ctime', B],
          ['btime', B],
          ['hard_links', I],
          ['symlink', I],
          ['symlink_target_path', T],
          ['type', T],
        ]),
      },
      generate: (ctx) => rowsOf(ctx, fileRow),
    },
    {
      spec: {
        name: 'hash',
        columns: columns([
          ['path', T, R],
          ['directory', T, R],
          ['md5', T],
          ['sha1', T],
          ['sha256', T],
        ]),
      },
      generate: (ctx) => rowsOf(ctx, hashRow),
    },
  ];
}
