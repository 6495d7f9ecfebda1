/**
 * Firmware and kernel of this machine for the stand-in's `platform_info` and
 * `kernel_info` tables, with osquery's column names. DMI (`/sys/class/dmi/id`)
 * is often missing (containers, microVMs such as this project's CI) or
 * root-only; then the DMI-backed columns are "" as osqueryd reports them, and
 * `firmware_type` still says `uefi` or `bios` from `/sys/firmware/efi`. The
 * kernel comes from uname (`os.release()`, `os.version()`) and `/proc/cmdline`.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { GeneratedRow } from './engine.js';

function text(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

const dmi = (name: string) => text(`/sys/class/dmi/id/${name}`);

export function readPlatformInfo(): GeneratedRow {
  return {
    vendor: dmi('bios_vendor'),
    version: dmi('bios_version'),
    date: dmi('bios_date'),
    revision: dmi('bios_release'),
    extra: '',
    firmware_type: existsSync('/sys/firmware/efi') ? 'uefi' : 'bios',
    address: '',
    size: '',
    volume_size: 0,
  };
}

export function readKernelInfo(): GeneratedRow {
  const cmdline = text('/proc/cmdline');
  const image = /(?:^|\s)BOOT_IMAGE=(\S+)/.exec(cmdline)?.[1] ?? '';
  const root = /(?:^|\s)root=(\S+)/.exec(cmdline)?.[1] ?? '';
  return { version: os.release(), arguments: cmdline, path: image, device: root };
}
