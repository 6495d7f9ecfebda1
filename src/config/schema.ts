/**
 * The launcher's configuration file, defined once with zod: validation,
 * defaults and the TypeScript type all come from this schema. Every field is
 * documented in config/launcher.example.yaml.
 */
import { z } from 'zod';
import * as rules from '../registration.js';

export const REGISTRATION_ID_PATTERN = rules.REGISTRATION_ID_PATTERN;

/** A value checked by one of the shared registration rules (src/registration.ts), with its message. */
function ruled<T extends z.ZodType>(schema: T, problem: (value: z.output<T>) => string | undefined): T {
  return schema.superRefine((value, ctx) => {
    const p = problem(value);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
  }) as unknown as T;
}

const registrationId = ruled(z.string(), rules.registrationIdProblem).transform((value) => value as rules.RegistrationId);
const hexPin = z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be a hex SHA-256 (64 hex digits)');
const level = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
/**
 * osquery flags a registration may add, e.g. "--verbose" or "--logger_min_status=1". Bounded and
 * free of control characters, by the same rule as the control API: a NUL byte or an argument past
 * the kernel's per-argument limit would otherwise only fail at every launch.
 */
const osqueryFlag = ruled(z.string(), rules.osqueryFlagProblem);

export const limitsSchema = z
  .object({
    memory_mb: ruled(z.number(), rules.memoryMbProblem).optional(),
    cpu_percent: ruled(z.number(), rules.cpuPercentProblem).optional(),
  })
  .strict();

/** issue 22: filesystem isolation and table denylist; unset fields take the vendor/tenant defaults. */
export const isolationSchema = z
  .object({
    mode: z.enum(rules.ISOLATION_MODES).optional(),
    disable_tables: ruled(z.array(z.string()), rules.disabledTablesProblem).optional(),
  })
  .strict();

export const registrationSchema = z
  .object({
    id: registrationId,
    enroll_secret: ruled(z.string(), rules.enrollSecretProblem).optional(),
    enroll_secret_path: z.string().min(1).optional(),
    limits: limitsSchema.default({}),
    osquery_flags: ruled(z.array(osqueryFlag), (flags) => rules.osqueryFlagCountProblem(flags.length)).default([]),
    isolation: isolationSchema.optional(),
    /** issue 17: run this osqueryd version (installed from the update repository) and leave it out of rollouts. */
    osqueryd_version: z
      .string()
      .regex(/^\d{1,6}(\.\d{1,6}){1,3}(-[0-9A-Za-z][0-9A-Za-z.]{0,31})?$/, 'must be a version like 5.13.1 or 5.13.1-rc1')
      .refine((v) => !v.includes('..'), 'must be a version like 5.13.1 or 5.13.1-rc1')
      .optional(),
  })
  .strict()
  .refine((r) => !(r.enroll_secret && r.enroll_secret_path), { message: 'set enroll_secret or enroll_secret_path, not both' });

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** issue 17 (adr/0018). */
export const updateSchema = z
  .object({
    /** TUF metadata base URL (`<url>/1.root.json`, `<url>/timestamp.json`, …). */
    metadata_url: httpUrl,
    /** Base URL of the targets (archives). */
    targets_url: httpUrl,
    /** The root.json trusted first: `package` (shipped with the launcher) or a path. */
    trusted_root: z.string().min(1).default('package'),
    channel: z.enum(['stable', 'beta', 'nightly']).default('stable'),
    check_interval_seconds: z
      .number()
      .min(1)
      .max(7 * 24 * 3600)
      .default(3600),
    /** How long the canary must stay healthy on a new version before the others move. */
    soak_seconds: z
      .number()
      .min(0)
      .max(7 * 24 * 3600)
      .default(600),
    /** How long each later instance must stay healthy before the next one moves. */
    step_seconds: z
      .number()
      .min(0)
      .max(24 * 3600)
      .default(60),
    /** An instance not healthy this long after its restart on a new version is rolled back. */
    healthy_within_seconds: z.number().min(1).max(3600).default(120),
    /** The canary registration; default: the first tenant (the vendor only when it is alone). */
    canary: registrationId.optional(),
    keep_versions: z.number().int().min(1).max(20).default(3),
    /** Bound on every request to the repository, body included. */
    timeout_seconds: z.number().min(1).max(3600).default(600),
    max_target_mb: z.number().int().min(1).max(4096).default(512),
  })
  .strict();

export const configSchema = z
  .object({
    root_directory: z.string().min(1).default('/var/lib/osquery-launcher'),
    /** "auto" searches PATH and the usual install paths. */
    osqueryd_path: z.string().min(1).default('auto'),
    log_level: level.default('info'),
    device_server: z
      .object({
        url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
        root_pem: z.string().min(1).optional(),
        cert_pins: z.array(hexPin).default([]),
        insecure: z.boolean().default(false),
        insecure_transport: z.boolean().default(false),
        timeout_ms: z.number().int().min(1000).max(300_000).default(30_000),
        concurrency: z.number().int().min(1).max(64).default(4),
      })
      .strict(),
    registrations: z.array(registrationSchema).max(256).default([]),
    control: z
      .object({
        enabled: z.boolean().default(true),
        /** unix:///path/to/socket or 127.0.0.1:port. Default: unix socket in the root directory. */
        listen: z.string().min(1).optional(),
        ca: z.string().min(1).optional(),
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
        /** certificate subject CN → "admin" or "tenant:<registration id>" */
        roles: z
          .record(
            z.string().min(1),
            z.union([z.literal('admin'), z.string().regex(/^tenant:[a-z0-9][a-z0-9_-]{0,62}$/, 'must be "admin" or "tenant:<id>"')]),
          )
          .default({}),
      })
      .strict()
      .default({ enabled: true, roles: {} }),
    output_ring_lines: z.number().int().min(100).max(1_000_000).default(10_000),
    log_buffer: z
      .object({
        max_entries: z.number().int().min(100).max(10_000_000).default(500_000),
        max_bytes_per_batch: z
          .number()
          .int()
          .min(4096)
          .max(64 * 1024 * 1024)
          .default(3 * 1024 * 1024),
        publish_interval_seconds: z.number().min(0.1).max(3600).default(60),
        /** All buffers together (issue 19): past it the oldest logs go, fairly across registrations. */
        max_total_bytes: z
          .number()
          .int()
          .min(1024 * 1024)
          .max(1024 ** 4)
          .default(512 * 1024 * 1024),
      })
      .strict()
      .default({
        max_entries: 500_000,
        max_bytes_per_batch: 3 * 1024 * 1024,
        publish_interval_seconds: 60,
        max_total_bytes: 512 * 1024 * 1024,
      }),
    /** The supervisor database's online backups (issue 19); 0 hours disables them. */
    store: z
      .object({
        backup_interval_hours: z
          .number()
          .min(0)
          .max(24 * 30)
          .default(6),
        backups_kept: z.number().int().min(1).max(100).default(3),
      })
      .strict()
      .default({ backup_interval_hours: 6, backups_kept: 3 }),
    health: z
      .object({
        interval_seconds: z.number().min(0.1).max(3600).default(60),
        startup_delay_seconds: z.number().min(0).max(3600).default(10),
        failures: z.number().int().min(1).max(100).default(5),
      })
      .strict()
      .default({ interval_seconds: 60, startup_delay_seconds: 10, failures: 5 }),
    /** issue 22: "off" treats the host as unable to make mount namespaces (isolation: unavailable). */
    isolation_namespaces: z.enum(['auto', 'off']).default('auto'),
    distributed_forwarding_interval_seconds: z.number().min(1).max(300).default(60),
    /** issue 16: queries that crash or hang a registration's osqueryd are quarantined for that registration. */
    quarantine: z
      .object({
        enabled: z.boolean().default(true),
        /** A distributed query with no result after this long ends (only) its osqueryd's run and is a suspect. */
        query_timeout_seconds: z.number().min(1).max(86_400).default(120),
        /** Incidents within the window that quarantine a query. */
        incidents: z.number().int().min(1).max(100).default(2),
        window_hours: z.number().min(0.01).max(720).default(24),
        /** A quarantine ends after this long unless released earlier. */
        ttl_days: z.number().min(0.001).max(365).default(7),
      })
      .strict()
      .default({ enabled: true, query_timeout_seconds: 120, incidents: 2, window_hours: 24, ttl_days: 7 }),
    /** issue 18: the doctor's checks run inside the supervisor at start and then every interval. */
    checkups: z
      .object({
        enabled: z.boolean().default(true),
        interval_seconds: z.number().min(1).max(86_400).default(3600),
      })
      .strict()
      .default({ enabled: true, interval_seconds: 3600 }),
    /** issue 18: off unless `listen` or `otlp_url` is set (README "Metrics"). */
    metrics: z
      .object({
        /** `127.0.0.1:PORT` (loopback only: the endpoint has no authentication) or `unix:///path` (mode 0600). */
        listen: z
          .string()
          .regex(
            /^(unix:\/\/\/[^\0]{1,102}|(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):\d{1,5})$/,
            'must be a loopback address 127.0.0.1:PORT or unix:///absolute/path',
          )
          .optional(),
        /** OTLP/HTTP metrics endpoint the same metrics are pushed to, e.g. http://127.0.0.1:4318/v1/metrics. */
        otlp_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
        otlp_interval_seconds: z.number().min(1).max(3600).default(60),
      })
      .strict()
      .default({ otlp_interval_seconds: 60 }),
    /** issue 17: osqueryd updates from a TUF repository; absent: the configured osqueryd_path only. */
    update: updateSchema.optional(),
  })
  .strict();

export type LauncherConfig = z.infer<typeof configSchema>;
export type RegistrationConfig = z.infer<typeof registrationSchema>;
export type Limits = z.infer<typeof limitsSchema>;
