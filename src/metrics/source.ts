/**
 * What the metrics module reads on every scrape (collect-on-scrape): the
 * registrations as the app already knows them. The app builds this from the
 * Runner, the log buffer and the device state trackers; src/metrics never
 * reaches into those modules itself.
 */

export interface BufferSample {
  count: number;
  bytes: number;
  /** Dropped since the registration was created (cap and oversize). */
  dropped: number;
}

export interface RegistrationSample {
  id: string;
  /** Supervisor or instance state (`running`, `backoff`, ...). */
  state: string;
  healthy: boolean;
  /** Device standing: enrolled, enrolling, failing, disabled. */
  device: string;
  restarts: number;
  uptimeSeconds: number;
  /** osqueryd's pid while it runs. */
  pid: number | null;
  /** How limits are enforced for the current run: cgroup-v2, cgroup-v1, watchdog, none. */
  limitsMode: string;
  buffers: { result: BufferSample; status: BufferSample };
}

export interface MetricsSource {
  registrations(): RegistrationSample[];
}
