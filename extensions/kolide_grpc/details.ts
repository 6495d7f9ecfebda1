/**
 * Enrollment details (reference §2.4): what the supervisor passes, with
 * runtime fields filled in where it left them empty. Launcher fills the OS
 * and hardware fields from an `osqueryd -S` run; here the supervisor owns
 * that and passes them in.
 */
import os from 'node:os';
import { orderedDetails, type EnrollmentDetails } from '../../src/device/index.js';

/** Node's platform and arch in Go's GOOS/GOARCH spelling. */
export function goos(platform: string = process.platform): string {
  return platform === 'win32' ? 'windows' : platform;
}

export function goarch(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[arch] ?? arch;
}

export function enrollmentDetails(given: Partial<EnrollmentDetails>, launcherVersion: string): EnrollmentDetails {
  const runtime: Partial<EnrollmentDetails> = {
    os_platform: goos(),
    os_platform_like: goos(),
    goos: goos(),
    goarch: goarch(),
    hostname: os.hostname(),
    launcher_version: launcherVersion,
  };
  const merged: Partial<EnrollmentDetails> = { ...runtime };
  for (const [k, v] of Object.entries(given) as Array<[keyof EnrollmentDetails, string | undefined]>) {
    if (v !== undefined && v !== '') merged[k] = v;
  }
  return orderedDetails(merged);
}
