// issue 15: the stand-in's system_info, os_version, osquery_info, platform_info and kernel_info give this
// machine's real values (DMI where readable, /etc/os-release, uname), with osqueryd's "" where the machine has none.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExtensionManagerClient } from '../../src/osquery/client.js';
import { SimHarness } from './helpers.js';

let h: SimHarness;
let client: ExtensionManagerClient;

beforeAll(async () => {
  h = new SimHarness();
  ({ client } = await h.start(h.paths(), []));
});
afterAll(async () => {
  await h.cleanup();
});

const file = (path: string): string => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
};
const osRelease = (key: string): string | undefined => new RegExp(`^${key}="?([^"\\n]*)"?$`, 'm').exec(file('/etc/os-release'))?.[1];

describe('host tables of the stand-in (issue 15)', () => {
  it('system_info and os_version are this machine', async () => {
    const [sys] = await client.query('select hostname, uuid, hardware_vendor, hardware_model, hardware_serial from system_info');
    expect(sys!.hostname).toBe(os.hostname());
    expect(sys!.uuid).toMatch(/^[0-9A-Fa-f-]{36}$/);
    expect(sys!.hardware_vendor).toBe(file('/sys/class/dmi/id/sys_vendor'));
    expect(sys!.hardware_model).toBe(file('/sys/class/dmi/id/product_name'));
    expect(sys!.hardware_serial).toBe(file('/sys/class/dmi/id/product_serial'));
    const [ver] = await client.query('select name, version, platform from os_version');
    expect(ver!.name).toBe(osRelease('NAME') ?? 'Linux');
    expect(ver!.version).toBe(osRelease('VERSION') ?? osRelease('VERSION_ID') ?? '');
    expect((await client.query('select version from osquery_info'))[0]!.version).not.toBe('');
  });

  it('platform_info and kernel_info come from DMI/firmware and uname', async () => {
    const [plat] = await client.query('select vendor, version, date, firmware_type from platform_info');
    expect(plat).toMatchObject({
      vendor: file('/sys/class/dmi/id/bios_vendor'),
      version: file('/sys/class/dmi/id/bios_version'),
      date: file('/sys/class/dmi/id/bios_date'),
    });
    expect(plat!.firmware_type).toBe(existsSync('/sys/firmware/efi') ? 'uefi' : 'bios');
    const [kernel] = await client.query('select version, arguments from kernel_info');
    expect(kernel).toEqual({ version: os.release(), arguments: file('/proc/cmdline') });
  });
});
