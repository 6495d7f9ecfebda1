// issue 18: SIGHUP reloads the config file, SIGUSR2 toggles debug logging, self-checkups land in
// kolide_launcher_checkups (through a real stand-in osqueryd) and in the vendor's status logs, and under
// systemd (JOURNAL_STREAM naming stderr) every line carries its journald priority. A real `bin/launcher run`.
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LauncherProcess } from '../../bench/reliability/launcher-process.js';
import { LAUNCHER_BIN } from '../../bench/reliability/paths.js';
import { Stage } from '../../bench/reliability/stage.js';
import { waitFor } from '../../bench/reliability/wait.js';

let stage: Stage;
let proc: LauncherProcess;

type Reg = { id: string; enroll_secret: string; limits?: Record<string, number> };
const reg = (id: string, limits?: Record<string, number>): Reg => ({ id, enroll_secret: `secret-${id}`, ...(limits ? { limits } : {}) });

function writeRegistrations(regs: Reg[], extra: Record<string, unknown> = {}): void {
  const cfg = JSON.parse(readFileSync(proc.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(proc.configPath, `${JSON.stringify({ ...cfg, registrations: regs, ...extra }, null, 2)}\n`);
}

async function pids(): Promise<Record<string, number | null>> {
  const out: Record<string, number | null> = {};
  for (const i of await proc.client.listInstances()) out[i.id] = i.pid;
  return out;
}

/** SIGHUP, then wait for the reload's outcome line (the count of `msg` grows). */
async function hup(msg: 'configuration reloaded' | 'configuration reload rejected; nothing changed'): Promise<Record<string, unknown>> {
  const before = proc.msgCounts.get(msg) ?? 0;
  proc.child.kill('SIGHUP');
  await waitFor('reload outcome', () => ((proc.msgCounts.get(msg) ?? 0) > before ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 50,
    explain: () => proc.tail(30),
  });
  return proc
    .records()
    .filter((r) => r.msg === msg)
    .at(-1)!;
}

beforeAll(async () => {
  stage = await Stage.create({ prefix: 'sig', registrations: ['kolide', 'acme', 'globex', 'initech', 'umbrella'] });
  proc = LauncherProcess.start({
    ...stage.launcherOptions(),
    config: { registrations: [reg('kolide'), reg('acme'), reg('globex')], checkups: { interval_seconds: 1 } },
    keepLines: 20_000,
  });
  await proc.waitHealthy(['kolide', 'acme', 'globex']);
}, 120_000);

afterAll(async () => {
  await proc?.stop();
  await stage?.cleanup();
}, 60_000);

describe('SIGHUP reloads the configuration', () => {
  it('adds, removes, restarts only what changed, rejects a bad file, keeps runtime enrollments', async () => {
    const start = await pids();

    writeRegistrations([reg('kolide'), reg('acme'), reg('globex'), reg('initech')]);
    const added = await hup('configuration reloaded');
    expect(added.added).toEqual(['initech']);
    await proc.waitHealthy(['initech']);
    let now = await pids();
    for (const id of ['kolide', 'acme', 'globex']) expect(now[id], id).toBe(start[id]);

    writeRegistrations([reg('kolide'), reg('acme'), reg('initech')]);
    expect((await hup('configuration reloaded')).removed).toEqual(['globex']);
    now = await pids();
    expect(Object.keys(now).sort()).toEqual(['acme', 'initech', 'kolide']);
    expect(now.kolide).toBe(start.kolide);
    expect(now.acme).toBe(start.acme);
    const initechPid = now.initech;

    // A tenant enrolled through the control API is not the file's: a reload leaves it alone.
    await proc.client.addRegistration({ id: 'umbrella', enrollSecret: 'secret-umbrella' });
    await proc.waitHealthy(['umbrella']);
    const umbrellaPid = (await pids()).umbrella;

    writeRegistrations([reg('kolide'), reg('acme', { memory_mb: 300 }), reg('initech')]);
    expect((await hup('configuration reloaded')).restarted).toEqual(['acme']);
    await waitFor('acme restarted', async () => ((await pids()).acme !== start.acme ? true : undefined), { timeoutMs: 30_000 });
    await proc.waitHealthy(['acme']);
    now = await pids();
    expect(now.kolide).toBe(start.kolide);
    expect(now.initech).toBe(initechPid);
    expect(now.umbrella).toBe(umbrellaPid);
    expect((await proc.client.getInstance('acme')).limits.memory_mb).toBe(300);
    const settled = now;

    // Bad files change nothing: not YAML; a schema error; an unknown flag; a renamed vendor.
    for (const bad of [
      'registrations: [ {id: kolide\n',
      JSON.stringify({ ...JSON.parse(readFileSync(proc.configPath, 'utf8')), registrations: [{ id: 'Bad Id!' }] }),
      null,
      'vendor',
    ]) {
      const good = readFileSync(proc.configPath, 'utf8');
      if (bad === null)
        writeRegistrations([reg('kolide'), { ...reg('acme'), osquery_flags: ['--no_such_flag_anywhere=1'] } as Reg, reg('initech')]);
      else if (bad === 'vendor') writeRegistrations([reg('acme', { memory_mb: 300 }), reg('kolide'), reg('initech')]);
      else writeFileSync(proc.configPath, bad);
      const rejected = await hup('configuration reload rejected; nothing changed');
      expect(String(rejected.err)).toMatch(bad === 'vendor' ? /vendor registration is "kolide"/ : /invalid configuration|unknown|not/i);
      expect(await pids()).toEqual(settled);
      writeFileSync(proc.configPath, good);
    }

    // A storm of SIGHUPs with an unchanged file: the supervisor stays up and nothing restarts.
    const before = proc.msgCounts.get('configuration reloaded') ?? 0;
    for (let i = 0; i < 30; i++) proc.child.kill('SIGHUP');
    await waitFor('storm folded', () => ((proc.msgCounts.get('configuration reloaded') ?? 0) > before ? true : undefined), {
      timeoutMs: 30_000,
    });
    // Let any folded reload finish, then check: still running, same pids, far fewer reloads than signals.
    await proc.client.health();
    expect(proc.running).toBe(true);
    expect(await pids()).toEqual(settled);
    expect((proc.msgCounts.get('configuration reloaded') ?? 0) - before).toBeLessThan(30);

    // The file takes over a runtime enrollment with the same settings: adopted, not restarted. (A reload the
    // storm queued may still run; the first reload that reads this file is the one that adopts.)
    writeRegistrations([reg('kolide'), reg('acme', { memory_mb: 300 }), reg('initech'), reg('umbrella')]);
    proc.child.kill('SIGHUP');
    const adopted = await waitFor(
      'umbrella adopted',
      () =>
        proc
          .records()
          .find((r) => r.msg === 'configuration reloaded' && Array.isArray(r.adopted) && (r.adopted as string[]).includes('umbrella')),
      { timeoutMs: 30_000, intervalMs: 50, explain: () => proc.tail(30) },
    );
    expect(adopted.restarted).toEqual([]);
    expect(await pids()).toEqual(settled);
    const origins = await proc.client.query(
      'kolide',
      "select registration_id, origin from kolide_launcher_registrations where registration_id = 'umbrella'",
    );
    expect(origins).toEqual([{ registration_id: 'umbrella', origin: 'config' }]);

    // A new enroll secret in the file means a new enrollment, as `ctl enroll --replace`: the old node key is dropped
    // (review: it was kept, so rotating a leaked secret changed nothing). The device server does not know this secret,
    // so acme stays unenrolled instead of carrying on under its old key.
    const enrolled = async () =>
      (await proc.client.query('kolide', "select enrolled from kolide_launcher_registrations where registration_id = 'acme'"))[0]?.enrolled;
    expect(await enrolled()).toBe('1');
    writeRegistrations([
      reg('kolide'),
      { ...reg('acme', { memory_mb: 300 }), enroll_secret: 'rotated-unknown' },
      reg('initech'),
      reg('umbrella'),
    ]);
    expect((await hup('configuration reloaded')).restarted).toEqual(['acme']);
    expect(await enrolled()).toBe('0');
  }, 300_000);
});

describe('SIGUSR2 toggles debug logging', () => {
  it('debug lines appear after the first toggle and stop after the second', async () => {
    const debugSince = (i: number) =>
      proc
        .records()
        .slice(i)
        .filter((r) => r.level === 20);
    const toggle = async (level: string) => {
      const n = proc.msgCounts.get('SIGUSR2: log level changed') ?? 0;
      proc.child.kill('SIGUSR2');
      await waitFor(`level ${level}`, () => ((proc.msgCounts.get('SIGUSR2: log level changed') ?? 0) > n ? true : undefined), {
        timeoutMs: 10_000,
      });
      const last = proc
        .records()
        .filter((r) => r.msg === 'SIGUSR2: log level changed')
        .at(-1)!;
      expect(last.log_level).toBe(level);
      expect(last.configured_level).toBe('info');
      return last;
    };
    expect(debugSince(0)).toEqual([]);
    await toggle('debug');
    const mark = proc.records().length;
    await proc.client.restartInstance('acme'); // osqueryd output lines and extension states are debug lines
    await waitFor('debug lines', () => (debugSince(mark).length > 0 ? true : undefined), { timeoutMs: 30_000 });
    await toggle('info');
    const mark2 = proc.records().length;
    await proc.client.restartInstance('acme');
    await proc.waitHealthy(['acme']);
    expect(debugSince(mark2)).toEqual([]);
  }, 120_000);
});

describe('self-checkups', () => {
  it('are a vendor-only state table and a status log to the vendor when a check is not passing', async () => {
    const rows = await waitFor(
      'checkup rows',
      async () => {
        const r = await proc.client.query('kolide', 'select name, status, detail, checked_at from kolide_launcher_checkups');
        return r.length > 0 ? r : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['config', 'osqueryd', 'root directory', 'cgroups']));
    for (const r of rows) expect(['pass', 'warn', 'fail']).toContain(r.status);
    // Rounds repeat (interval 1 s): checked_at moves.
    const first = Number(rows[0]!.checked_at);
    await waitFor(
      'a later round',
      async () => {
        const r = await proc.client.query('kolide', 'select checked_at from kolide_launcher_checkups');
        return Number(r[0]?.checked_at) > first ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    // A tenant sees no host rows.
    expect(await proc.client.query('acme', 'select * from kolide_launcher_checkups')).toEqual([]);
    // The stage's device server is plain HTTP (insecure_transport): the device server check warns, so the
    // first round reports it to the vendor's backend, and only there.
    expect(rows.find((r) => r.name === 'device server')?.status).toBe('warn');
    await waitFor(
      'checkup status log at the vendor backend',
      () => (stage.dev.logs({ tenant: 'kolide', logType: 4 }).some((l) => l.data.includes('self-checkup')) ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(stage.dev.logs({ tenant: 'acme', logType: 4 }).some((l) => l.data.includes('self-checkup'))).toBe(false);
  }, 120_000);
});

describe('journald priorities', () => {
  it('prefixes every line with <N> when JOURNAL_STREAM names stderr', async () => {
    await proc.stop();
    const out = join(stage.dir, 'journal.out');
    const fd = openSync(out, 'w');
    const st = fstatSync(fd);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LAUNCHER_')) env[k] = v;
    env.JOURNAL_STREAM = `${st.dev}:${st.ino}`;
    const child = spawn(process.execPath, [LAUNCHER_BIN, 'run', '--config', proc.configPath], { env, stdio: ['ignore', 'ignore', fd] });
    closeSync(fd);
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await waitFor('ready in the journal stream', () => (readFileSync(out, 'utf8').includes('launcher ready') ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 100,
      });
      child.kill('SIGUSR2'); // logged at warn
      await waitFor('warn line', () => (readFileSync(out, 'utf8').includes('SIGUSR2') ? true : undefined), { timeoutMs: 10_000 });
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const lines = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('<') || l.startsWith('{'));
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect(l).toMatch(/^<[0-7]>\{"level":\d+/);
    const prio = (l: string) => Number(/^<(\d)>/.exec(l)![1]);
    const level = (l: string) => Number(/"level":(\d+)/.exec(l)![1]);
    for (const l of lines) expect(prio(l)).toBe(({ 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 } as Record<number, number>)[level(l)] ?? 7);
    expect(lines.some((l) => l.startsWith('<4>') && l.includes('SIGUSR2'))).toBe(true);
    expect(lines.some((l) => l.startsWith('<6>') && l.includes('launcher ready'))).toBe(true);
  }, 120_000);
});
