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
  })
  .strict()
  .refine((r) => !(r.enroll_secret && r.enroll_secret_path), { message: 'set enroll_secret or enroll_secret_path, not both' });

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
  })
  .strict();

export type LauncherConfig = z.infer<typeof configSchema>;
export type RegistrationConfig = z.infer<typeof registrationSchema>;
export type Limits = z.infer<typeof limitsSchema>;
