/**
 * Readers of this machine's state for the core tables: /proc, /etc/passwd,
 * /etc/os-release, /sys/class/dmi. Linux only; every field degrades to
 * osquery's "unknown" value (-1 or empty) when unreadable.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import type { GeneratedRow } from './engine.js';

const CLK_TCK = 100;
const PAGE_SIZE = 4096;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function link(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

let cachedBootTime: number | undefined;
export function bootTime(): number {
  if (cachedBootTime === undefined) {
    const m = /^btime\s+(\d+)/m.exec(read('/proc/stat') ?? '');
    cachedBootTime = m ? Number(m[1]) : Math.floor(Date.now() / 1000 - os.uptime());
  }
  return cachedBootTime;
}

function statusField(status: string, key: string): string[] {
  const m = new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(status);
  return m ? m[1]!.trim().split(/\s+/) : [];
}

/** One `processes` row, or undefined when the process is gone. */
function processRow(pid: number): GeneratedRow | undefined {
  const dir = `/proc/${pid}`;
  const stat = read(`${dir}/stat`);
  const status = read(`${dir}/status`);
  if (stat === undefined || status === undefined) return undefined;
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const num = (i: number) => Number(f[i] ?? -1);
  const uid = statusField(status, 'Uid').map(Number);
  const gid = statusField(status, 'Gid').map(Number);
  const path = link(`${dir}/exe`).replace(/ \(deleted\)$/, '');
  const io = read(`${dir}/io`);
  const ioField = (k: string) => {
    const m = io && new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(io);
    return m ? Number(m[1]) : -1;
  };
  const cgroup = (read(`${dir}/cgroup`) ?? '').split('\n')[0] ?? '';
  return {
    pid,
    name: statusField(status, 'Name').join(' '),
    path,
    cmdline: (read(`${dir}/cmdline`) ?? '').replace(/\0+$/, '').replace(/\0/g, ' '),
    state: f[0] ?? '',
    cwd: link(`${dir}/cwd`),
    root: link(`${dir}/root`),
    uid: uid[0] ?? -1,
    gid: gid[0] ?? -1,
    euid: uid[1] ?? -1,
    egid: gid[1] ?? -1,
    suid: uid[2] ?? -1,
    sgid: gid[2] ?? -1,
    on_disk: path === '' ? -1 : existsSync(path) ? 1 : 0,
    wired_size: 0,
    resident_size: num(21) * PAGE_SIZE,
    total_size: num(20),
    user_time: Math.round((num(11) * 1000) / CLK_TCK),
    system_time: Math.round((num(12) * 1000) / CLK_TCK),
    disk_bytes_read: ioField('read_bytes'),
    disk_bytes_written: ioField('write_bytes'),
    start_time: bootTime() + Math.floor(num(19) / CLK_TCK),
    parent: num(1),
    pgroup: num(2),
    threads: num(17),
    nice: num(16),
    cgroup_path: cgroup.slice(cgroup.indexOf(':', cgroup.indexOf(':') + 1) + 1),
  };
}

/** All processes, or only `pids` when given (a `pid = N` constraint). */
export function readProcesses(pids?: number[]): GeneratedRow[] {
  const list =
    pids ??
    readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  return list.flatMap<GeneratedRow>((pid) => processRow(pid) ?? []);
}

export function readUsers(): GeneratedRow[] {
  return (read('/etc/passwd') ?? '')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((line) => {
      const [username = '', , uid = '-1', gid = '-1', description = '', directory = '', shell = ''] = line.split(':');
      return {
        uid: Number(uid) >>> 0,
        gid: Number(gid) >>> 0,
        uid_signed: Number(uid) | 0,
        gid_signed: Number(gid) | 0,
        username,
        description,
        directory,
        shell,
        uuid: '',
      };
    });
}

function osRelease(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of (read('/etc/os-release') ?? read('/usr/lib/os-release') ?? '').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return out;
}

export function machineArch(): string {
  return ({ x64: 'x86_64', arm64: 'aarch64', ia32: 'i686' } as Record<string, string>)[os.arch()] ?? os.arch();
}

export function readOsVersion(): GeneratedRow {
  const r = osRelease();
  const [major = '', minor = '', patch = ''] = (r.VERSION_ID ?? '').split('.');
  return {
    name: r.NAME ?? 'Linux',
    version: r.VERSION ?? r.VERSION_ID ?? '',
    major: major === '' ? 0 : major,
    minor: minor === '' ? 0 : minor,
    patch: patch === '' ? 0 : patch,
    build: r.BUILD_ID ?? '',
    platform: r.ID ?? 'linux',
    platform_like: r.ID_LIKE ?? '',
    codename: r.VERSION_CODENAME ?? '',
    arch: machineArch(),
  };
}

const dmi = (name: string) => (read(`/sys/class/dmi/id/${name}`) ?? '').trim();

export function readSystemInfo(hostUuid: string): GeneratedRow {
  const cpus = os.cpus();
  const cpuinfo = read('/proc/cpuinfo') ?? '';
  const cores = new Set<string>();
  for (const block of cpuinfo.split('\n\n')) {
    const phys = /physical id\s*:\s*(\d+)/.exec(block)?.[1];
    const core = /core id\s*:\s*(\d+)/.exec(block)?.[1];
    if (phys !== undefined && core !== undefined) cores.add(`${phys}:${core}`);
  }
  return {
    hostname: os.hostname(),
    uuid: hostUuid,
    cpu_type: machineArch(),
    cpu_subtype: '',
    cpu_brand: cpus[0]?.model ?? '',
    cpu_physical_cores: cores.size > 0 ? cores.size : cpus.length,
    cpu_logical_cores: cpus.length,
    cpu_microcode: /microcode\s*:\s*(\S+)/.exec(cpuinfo)?.[1] ?? '',
    physical_memory: os.totalmem(),
    hardware_vendor: dmi('sys_vendor'),
    hardware_model: dmi('product_name'),
    hardware_version: dmi('product_version'),
    hardware_serial: dmi('product_serial'),
    board_vendor: dmi('board_vendor'),
    board_model: dmi('board_name'),
    board_version: dmi('board_version'),
    board_serial: dmi('board_serial'),
    computer_name: os.hostname(),
    local_hostname: os.hostname(),
  };
}

export function readUptimeSeconds(): number {
  const v = Number((read('/proc/uptime') ?? '').split(' ')[0]);
  return Math.floor(Number.isFinite(v) ? v : os.uptime());
}
