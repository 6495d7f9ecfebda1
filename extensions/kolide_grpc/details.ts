/**
 * Enrollment details (docs/protocol/device.md#enrollment-details). Runtime fields (platform, Go-style
 * os/arch, launcher version) are known at once; the OS and hardware fields
 * come from osqueryd. Launcher runs a one-shot `osqueryd -S`; here they are
 * read through the instance's own osqueryd as soon as its extension manager
 * answers (the same machine, and the same `system_info.uuid` a query through
 * that instance returns, which a throw-away `--ephemeral` run would not give
 * on a machine without a readable SMBIOS uuid). A failed read is retried
 * within a bound. Enrollment waits for `os_version` and `hostname` at most
 * `waitMs` (launcher: 60 s), then goes with what it has; each instance waits
 * on its own, so one slow osqueryd never holds another registration back.
 */
import os from 'node:os';
import { orderedDetails, type EnrollmentDetails } from '../../src/device/index.js';
import { errorMessage } from '../../src/errors.js';
import type { Logger } from '../../src/log/logger.js';

/** Launcher's query (docs/protocol/device.md#enrollment-details): one row over osquery_info, os_version and system_info. */
export const DETAILS_SQL =
  'select osquery_info.version as osquery_version, os_version.build as os_build_id, os_version.name as os_name, ' +
  'os_version.version as os_version, system_info.hardware_model as hardware_model, system_info.hardware_serial as hardware_serial, ' +
  'system_info.hardware_vendor as hardware_vendor, system_info.hostname as hostname, system_info.uuid as hardware_uuid ' +
  'from osquery_info, os_version, system_info';

const QUERIED_KEYS = [
  'osquery_version',
  'os_build_id',
  'os_name',
  'os_version',
  'hardware_model',
  'hardware_serial',
  'hardware_vendor',
  'hostname',
  'hardware_uuid',
] as const;

/** Runs SQL on this instance's osqueryd once its manager answers (rejects when the run ends first). */
export type OsqueryQuery = (sql: string, timeoutMs: number) => Promise<Array<Record<string, string>>>;

export interface DetailsTimings {
  /** Longest enrollment waits for os_version and hostname (ms). Launcher: 60 000. */
  waitMs: number;
  /** Per query attempt (ms). Launcher: 12 000. */
  attemptTimeoutMs: number;
  /** Between failed attempts (ms). Launcher: 15 000. */
  retryMs: number;
  /** Give up reading after (ms). Launcher: 120 000. */
  giveUpMs: number;
}

export const DEFAULT_DETAILS_TIMINGS: DetailsTimings = { waitMs: 60_000, attemptTimeoutMs: 12_000, retryMs: 15_000, giveUpMs: 120_000 };

/** Node's platform and arch in Go's GOOS/GOARCH spelling. */
export function goos(platform: string = process.platform): string {
  return platform === 'win32' ? 'windows' : platform;
}

export function goarch(arch: string = process.arch): string {
  const map: Record<string, string> = {
    x64: 'amd64',
    ia32: '386',
    arm: 'arm',
    arm64: 'arm64',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
  };
  return map[arch] ?? arch;
}

/**
 * The 17 fields: runtime values, then what osqueryd said, then what the
 * supervisor passed, each non-empty value winning over the earlier ones.
 * `hostname` falls back to this machine's when osqueryd has not answered.
 */
export function enrollmentDetails(
  given: Partial<EnrollmentDetails>,
  launcherVersion: string,
  fromOsquery: Partial<EnrollmentDetails> = {},
): EnrollmentDetails {
  const merged: Partial<EnrollmentDetails> = {
    os_platform: goos(),
    os_platform_like: goos(),
    goos: goos(),
    goarch: goarch(),
    hostname: os.hostname(),
    launcher_version: launcherVersion,
  };
  for (const source of [fromOsquery, given]) {
    for (const [k, v] of Object.entries(source) as Array<[keyof EnrollmentDetails, string | undefined]>) {
      if (v !== undefined && v !== '') merged[k] = v;
    }
  }
  return orderedDetails(merged);
}

/** Reads the OS and hardware fields from one instance's osqueryd; enrollment waits on it (bounded). */
export class DetailsReader {
  private values: Partial<EnrollmentDetails> = {};
  private ready = false;
  private readonly waiters = new Set<() => void>();
  private reading: Promise<void> | undefined;

  constructor(
    private readonly query: OsqueryQuery | undefined,
    private readonly t: DetailsTimings,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
  ) {
    if (!query) this.ready = true; // nothing to wait for
  }

  /** What osqueryd answered so far. */
  get current(): Partial<EnrollmentDetails> {
    return { ...this.values };
  }

  /** Start reading (once). */
  start(): void {
    if (!this.query || this.reading) return;
    this.reading = this.read(this.query).finally(() => this.settle());
  }

  /** Resolves once os_version and hostname are known, the reader gave up, or `waitMs` passed: never rejects. */
  async wait(): Promise<Partial<EnrollmentDetails>> {
    if (!this.ready && !this.signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          this.signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(() => {
          this.log.warn({ wait_ms: this.t.waitMs }, 'os_version/hostname not known yet; enrolling with the details at hand');
          done();
        }, this.t.waitMs);
        this.waiters.add(done);
        this.signal.addEventListener('abort', done, { once: true });
      });
    }
    return this.current;
  }

  private settle(): void {
    this.ready = true;
    for (const w of [...this.waiters]) w();
  }

  private async read(query: OsqueryQuery): Promise<void> {
    const deadline = Date.now() + this.t.giveUpMs;
    for (let attempt = 1; !this.signal.aborted; attempt++) {
      try {
        const row = (await query(DETAILS_SQL, this.t.attemptTimeoutMs))[0] ?? {};
        const got: Partial<EnrollmentDetails> = {};
        for (const k of QUERIED_KEYS) if (row[k]) got[k] = row[k];
        this.values = { ...this.values, ...got };
        if (got.os_version && got.hostname) {
          this.log.debug({ attempt }, 'enrollment details read from osqueryd');
          return;
        }
        throw new Error(`osqueryd answered without os_version/hostname (${JSON.stringify(row)})`);
      } catch (err) {
        if (this.signal.aborted) return;
        if (Date.now() + this.t.retryMs > deadline) {
          this.log.warn({ attempt, err: errorMessage(err) }, 'cannot read enrollment details from osqueryd; giving up');
          return;
        }
        this.log.debug({ attempt, err: errorMessage(err) }, 'reading enrollment details failed; retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.t.retryMs);
          this.signal.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              resolve();
            },
            { once: true },
          );
        });
      }
    }
  }
}
