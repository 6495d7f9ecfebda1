// runProgram (src/doctor/program.ts) leaves nothing behind: a program that ignores SIGTERM and starts a child of its
// own is ended with its whole group at the timeout, and a process that exits while a check still runs takes the
// check's group with it (the self-checkups run inside the supervisor). Real processes, /proc scans.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runProgram } from '../../src/doctor/program.js';
import { shortTempDir, waitFor } from '../helpers/tmp.js';

const repo = resolve(import.meta.dirname, '../..');
let tmp: ReturnType<typeof shortTempDir> | undefined;
afterEach(() => tmp?.cleanup());

/** Pids of live processes whose command line contains `marker`. */
function running(marker: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '')) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').includes(marker)) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** A script that ignores SIGTERM, starts a sleeping child and never exits on its own. */
function deafScript(): string {
  tmp = shortTempDir('prg');
  const file = join(tmp.dir, 'deaf.sh');
  writeFileSync(file, `#!/bin/sh\ntrap '' TERM\nsleep 3600 &\nwhile :; do sleep 1; done\n`, { mode: 0o755 });
  return file;
}

describe('runProgram', () => {
  it('answers a program that exits', async () => {
    const out = await runProgram(process.execPath, ['-e', 'console.log("hi"); process.exit(3)'], 10_000);
    expect(out).toMatchObject({ code: 3, stdout: 'hi\n' });
    expect(out.error).toBeUndefined();
  });

  it('says so for a program that does not exist', async () => {
    const out = await runProgram('/nonexistent/program', [], 10_000);
    expect(out.error).toMatch(/ENOENT/);
  });

  it('ends the whole group of a program that ignores SIGTERM at the timeout', async () => {
    const script = deafScript();
    const out = await runProgram(script, [], 500);
    expect(out.error).toBe('no answer within 500 ms');
    await waitFor(() => running(script).length === 0 && running('sleep 3600').length === 0, 10_000, 'the group gone');
  });

  it('a process that exits while a check runs takes the check with it', async () => {
    const script = deafScript();
    const program = join(repo, 'dist/src/doctor/program.js');
    const code = `const { runProgram } = await import(${JSON.stringify(program)}); void runProgram(${JSON.stringify(script)}, [], 600000); setTimeout(() => process.exit(0), 300);`;
    execFileSync(process.execPath, ['--input-type=module', '-e', code], { timeout: 30_000 });
    await waitFor(() => running(script).length === 0, 10_000, 'the check gone with its parent');
  });
});
