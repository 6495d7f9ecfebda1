/**
 * `npm start`: the whole product on embedded defaults. A local device server
 * on 127.0.0.1, the supervisor with the vendor (`kolide`) and tenant `acme`,
 * each with its own osqueryd (a real one when installed, else the stand-in),
 * the control API with fresh local certificates, and a guide printed last,
 * once the instances are up, describing what is there now (issue 21). The
 * terminal shows only warnings; every log line goes to <root>/launcher.log.
 * State lives in ./.launcher-demo (or $LAUNCHER_ROOT).
 */
import { existsSync, mkdirSync, writeFileSync, readFileSync, copyFileSync } from 'node:fs';
import { join, resolve, relative } from 'node:path';
import { configSchema, type LauncherConfig } from '../config/schema.js';
import type { LevelWithSilent } from 'pino';
import { componentLogger, type Logger } from '../log/logger.js';
import type { InstanceInfo as FullInstanceInfo } from '../state/types.js';

/** What the guide says about each instance. */
type InstanceInfo = Pick<FullInstanceInfo, 'id' | 'state' | 'healthy'>;
import { DEMO_LOG_FILE, demoLogger } from './demo-log.js';
import { generateAdminToken, startDevServer, writeAdminTokenFile, type DevServer } from '../devserver/index.js';
import { initCertificates, issueCertificates, CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, ROLES_FILE } from '../control/certs-init.js';
import { CLIENT_CONFIG_NAME } from '../control/client-config.js';
import { locateOsqueryd, STAND_IN_RULE } from './locate-osqueryd.js';
import { LauncherApp } from './launcher-app.js';

export const DEMO_TENANTS = ['kolide', 'acme', 'globex'] as const;
/** The device server's admin token, in the demo root. */
export const ADMIN_TOKEN_FILE = 'devserver-admin.token';

/** The demo's osquery config per tenant: a differential and a snapshot query, quick intervals. */
export function demoOsqueryConfig(tenant: string): string {
  return JSON.stringify({
    options: { host_identifier: 'uuid', schedule_splay_percent: 0 },
    schedule: {
      [`${tenant}_uptime`]: { query: 'select days, hours, minutes, total_seconds from uptime', interval: 10, snapshot: true },
      [`${tenant}_launcher_state`]: { query: 'select registration_id, state, pid, healthy from kolide_launcher_instances', interval: 15 },
    },
  });
}

export interface DemoOptions {
  root?: string;
  /** Level of the log file (default info); the terminal shows warnings and errors only. */
  level?: LevelWithSilent;
  /** Log here instead (tests); default demoLogger(). */
  logger?: Logger;
  /** Where the guide goes (default stdout). */
  guide?: (text: string) => void;
}

export interface PreparedDemo {
  root: string;
  config: LauncherConfig;
  devServer: DevServer;
  osqueryd: ReturnType<typeof locateOsqueryd>;
  /** The guide for the instances there now, and the metrics endpoint once it listens. */
  guide: (instances: readonly InstanceInfo[], metricsUrl?: string) => string;
}

export async function prepareDemo(options: DemoOptions & { logger: Logger }): Promise<PreparedDemo> {
  const root = resolve(options.root ?? process.env.LAUNCHER_ROOT ?? '.launcher-demo');
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const secretsDir = join(root, 'secrets');
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  const secrets: Record<string, string> = {};
  for (const t of DEMO_TENANTS) {
    const file = join(secretsDir, `${t}.secret`);
    if (!existsSync(file)) writeFileSync(file, `demo-secret-${t}-${Math.random().toString(36).slice(2)}\n`, { mode: 0o600 });
    secrets[t] = readFileSync(file, 'utf8').trim();
  }
  // A fresh admin token per start, 0600 in the root: only this user can drive the device server (issue 13).
  const adminToken = generateAdminToken();
  const adminTokenFile = join(root, ADMIN_TOKEN_FILE);
  writeAdminTokenFile(adminTokenFile, adminToken);
  const devServer = await startDevServer({
    dbPath: join(root, 'devserver.sqlite'),
    adminToken,
    tenants: DEMO_TENANTS.map((t) => ({ name: t, secrets: [secrets[t]!], config: demoOsqueryConfig(t) })),
    logger: componentLogger(options.logger, 'devserver'),
  });
  const certs = join(root, 'certs');
  const target = `unix://${join(root, 'control.sock')}`;
  if (!existsSync(join(certs, CA_CERT_FILE))) {
    await initCertificates({ dir: certs, tenants: ['acme', 'globex'], target });
  } else if (!existsSync(join(certs, 'tenant-globex.pem'))) {
    await issueCertificates({ dir: certs, tenants: ['globex'], target });
  }
  // The admin client config where `launcher ctl` looks by default (./.launcher-demo/ctl.json).
  const ctl = JSON.parse(readFileSync(join(certs, CLIENT_CONFIG_NAME), 'utf8')) as Record<string, string>;
  writeFileSync(
    join(root, CLIENT_CONFIG_NAME),
    `${JSON.stringify({ ...ctl, ca: join(certs, ctl.ca!), cert: join(certs, ctl.cert!), key: join(certs, ctl.key!), target }, null, 2)}\n`,
  );
  copyFileSync(join(secretsDir, 'globex.secret'), join(root, 'globex.secret'));
  const roles = JSON.parse(readFileSync(join(certs, ROLES_FILE), 'utf8')) as Record<string, string>;
  const osqueryd = locateOsqueryd(process.env.LAUNCHER_OSQUERYD_PATH || 'auto', { allowStandIn: true });
  const config = configSchema.parse({
    root_directory: root,
    osqueryd_path: osqueryd.path,
    log_level: 'info',
    device_server: { url: devServer.url, insecure_transport: true },
    registrations: [
      { id: 'kolide', enroll_secret_path: join(secretsDir, 'kolide.secret') },
      { id: 'acme', enroll_secret_path: join(secretsDir, 'acme.secret'), limits: { memory_mb: 300, cpu_percent: 20 } },
    ],
    control: {
      enabled: true,
      listen: target,
      ca: join(certs, CA_CERT_FILE),
      cert: join(certs, SERVER_CERT_FILE),
      key: join(certs, SERVER_KEY_FILE),
      roles,
    },
    log_buffer: { publish_interval_seconds: 5 },
    health: { interval_seconds: 10, startup_delay_seconds: 5, failures: 3 },
    distributed_forwarding_interval_seconds: 5,
    // issue 18: the metrics endpoint on a free loopback port (the guide prints it).
    metrics: { listen: process.env.LAUNCHER_METRICS_LISTEN || '127.0.0.1:0' },
  });
  const rel = relative(process.cwd(), root) || '.';
  const bearer = `-H "Authorization: Bearer $(cat ${join(rel, ADMIN_TOKEN_FILE)})"`;
  const which =
    osqueryd.source === 'stand-in'
      ? `osqueryd: no real osqueryd found (searched ${osqueryd.searched.length - 1} paths: \`launcher version\` shows which); using the stand-in ${osqueryd.path}`
      : `osqueryd: ${osqueryd.path} (${osqueryd.source})`;
  const guide = (instances: readonly InstanceInfo[], metricsUrl?: string): string =>
    [
      '',
      'osquery-launcher demo',
      `  ${which}`,
      ...(osqueryd.source === 'stand-in' ? [`  (${STAND_IN_RULE})`] : []),
      `  device server: ${devServer.url} (tenants: ${DEMO_TENANTS.join(', ')}; admin endpoints under /admin/, token in ${join(rel, ADMIN_TOKEN_FILE)})`,
      `  control API:   ${target} (mutual TLS; certificates in ${rel}/certs)`,
      `  state:         ${rel}/launcher.sqlite (registrations, node keys, config cache, log buffers, run history)`,
      `  logs:          ${rel}/${DEMO_LOG_FILE} (every line; this terminal shows warnings and errors only)`,
      ...(metricsUrl
        ? [`  metrics:       ${metricsUrl} (Prometheus text, e.g. curl it and grep restarts; README "Metrics" lists every series)`]
        : []),
      '',
      `Running now: ${instances.map(instanceSummary).join(', ') || 'no instances'}`,
      '',
      'In a second terminal, from this directory:',
      ...(root === resolve('.launcher-demo')
        ? []
        : [`  export LAUNCHER_CTL_CONFIG=${join(rel, CLIENT_CONFIG_NAME)}     # this demo's root is not ./.launcher-demo`]),
      '  bin/launcher ctl list                                   # instances, pids, health',
      instances.some((i) => i.id === 'globex')
        ? `  bin/launcher ctl remove globex                          # globex was enrolled in an earlier run; remove it (enroll again with --secret-file ${rel}/globex.secret)`
        : `  bin/launcher ctl enroll globex --secret-file ${rel}/globex.secret   # add a tenant at runtime`,
      "  bin/launcher ctl query acme 'select * from kolide_launcher_instances'   # tenant-scoped state table",
      "  bin/launcher ctl query kolide 'select * from kolide_launcher_instances' # the vendor sees all",
      '  bin/launcher ctl logs acme -f                           # follow osqueryd output from the start of the run',
      '  bin/launcher ctl history acme                           # runs, exits, errors',
      `  curl -s ${bearer} '${devServer.url}/admin/logs?tenant=acme&format=ndjson' | head  # logs delivered to the device server, one per line`,
      `  curl -s ${bearer} -XPOST ${devServer.url}/admin/queries -d '{"tenant":"acme","sql":"select version from osquery_info"}'`,
      `  curl -s ${bearer} '${devServer.url}/admin/results?tenant=acme&format=ndjson'      # distributed query results`,
      '',
      'Ctrl-C stops everything.',
      '',
    ].join('\n');
  return { root, config, devServer, osqueryd, guide };
}

function instanceSummary(i: InstanceInfo): string {
  return `${i.id} (${i.state}${i.state === 'running' ? (i.healthy ? ', healthy' : ', not healthy yet') : ''})`;
}

/** How long the guide waits for every instance to be healthy before it prints what there is. */
const GUIDE_WAIT_MS = 60_000;

/** Resolves once every instance is running and healthy, or after `bound` ms; polls the runner's own status. */
async function instancesUp(status: () => InstanceInfo[], bound: number, stopped: () => boolean): Promise<void> {
  const deadline = Date.now() + bound;
  while (Date.now() < deadline && !stopped()) {
    const all = status();
    if (all.length > 0 && all.every((i) => i.state === 'running' && i.healthy)) return;
    await new Promise((r) => setTimeout(r, 250).unref());
  }
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const root = resolve(options.root ?? process.env.LAUNCHER_ROOT ?? '.launcher-demo');
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const logger = options.logger ?? demoLogger(root, options.level ?? 'info');
  const demo = await prepareDemo({ ...options, root, logger });
  const app = new LauncherApp({
    config: demo.config,
    osquerydPath: demo.osqueryd.path,
    logger,
    extension: { distributedStartupWindowMs: 0 },
  });
  let done = false;
  const running = app.run().finally(() => (done = true));
  const print = options.guide ?? ((t: string) => void process.stdout.write(t));
  void app
    .whenReady()
    .then(() =>
      instancesUp(
        () => app.runner.status(),
        GUIDE_WAIT_MS,
        () => done,
      ),
    )
    .then(() => {
      if (!done) print(demo.guide(app.runner.status(), app.metricsUrl));
    });
  try {
    await running;
  } finally {
    await demo.devServer.close();
  }
}
