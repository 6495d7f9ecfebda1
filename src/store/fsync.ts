/** fsync helpers for files the store writes whole (backups, restores: issue 19). */
import { closeSync, fsyncSync, openSync } from 'node:fs';

/** fsync a file (or, with `r`, a directory) by path. */
function fsyncPath(path: string, flags: 'r' | 'r+'): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export const fsyncFile = (path: string): void => fsyncPath(path, 'r+');

/** fsync a directory so a rename in it is durable; some filesystems refuse it (the rename is atomic anyway). */
export function syncDirectory(dir: string): void {
  try {
    fsyncPath(dir, 'r');
  } catch {
    // not supported here
  }
}
