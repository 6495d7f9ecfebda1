/**
 * `launcher certs …`: local certificates for the control API.
 *
 *   launcher certs init  --dir D [--tenant ID]... [--admin NAME]... [--target T] [--days N] [--force]
 *   launcher certs issue --dir D [--tenant ID]... [--admin NAME]... [--target T] [--days N]
 *
 * See src/control/certs-init.ts for the files written.
 */
import { Command, InvalidArgumentError } from 'commander';
import { errorOutput, wireJson } from './cli-output.js';
import { initCertificates, issueCertificates, type IdentityFiles } from '../control/certs-init.js';

export interface CertsIo {
  stdout(text: string): void;
  stderr(text: string): void;
  exit(code: number): void;
}

function days(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3650) throw new InvalidArgumentError(`expected 1..3650 days, got ${JSON.stringify(value)}`);
  return n;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface CertsOptions {
  dir: string;
  tenant: string[];
  admin: string[];
  target?: string;
  days?: number;
  force?: boolean;
  json?: boolean;
}

function identitiesText(identities: IdentityFiles[]): string {
  return identities.map((i) => `  ${i.subject.padEnd(24)} ${i.role.padEnd(20)} ${i.config}\n`).join('');
}

export function buildCertsCommand(overrides: Partial<CertsIo> = {}): Command {
  const io: CertsIo = {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    exit: (code) => {
      process.exitCode = code;
    },
    ...overrides,
  };
  const certs = new Command('certs').description('certificates for the control API (local CA, server, clients)');
  certs.configureOutput({ writeOut: (t) => io.stdout(t), writeErr: (t) => io.stderr(t) });

  const common = (cmd: Command): Command =>
    cmd
      .requiredOption('--dir <dir>', 'directory for the CA, certificates, keys, roles.json and client configs')
      .option('--tenant <id>', 'client certificate CN=tenant-<id> with role tenant:<id> (repeatable)', collect, [] as string[])
      .option('--target <target>', 'control API target written to the client configs (default unix://<dir>/control.sock)')
      .option('--days <n>', 'validity of server and client certificates (default 825)', days)
      .option('--json', 'print the result as JSON');

  const run =
    (body: (opts: CertsOptions) => Promise<void>) =>
    async (opts: CertsOptions): Promise<void> => {
      try {
        await body(opts);
        io.exit(0);
      } catch (err) {
        io.stderr(errorOutput('launcher certs', err, opts.json === true));
        io.exit(1);
      }
    };

  common(certs.command('init').description('create a local CA, a server certificate and client certificates'))
    .option('--admin <name>', 'admin client certificate CN=<name> (repeatable; default: admin)', collect, [] as string[])
    .option('--force', 'replace an existing CA (invalidates every certificate it issued)')
    .action(
      run(async (opts) => {
        const result = await initCertificates({
          dir: opts.dir,
          tenants: opts.tenant,
          admins: opts.admin.length > 0 ? opts.admin : ['admin'],
          target: opts.target,
          days: opts.days,
          force: opts.force,
        });
        if (opts.json) {
          io.stdout(`${JSON.stringify(wireJson(result), null, 2)}\n`);
          return;
        }
        io.stdout(
          `CA        ${result.caCert} (key ${result.caCert.replace(/\.pem$/, '.key')}, 0600)\n` +
            `server    ${result.serverCert} (key ${result.serverKey}, 0600)\n` +
            `roles     ${result.rolesFile}\n` +
            `clients:\n${identitiesText(result.identities)}`,
        );
      }),
    );

  common(certs.command('issue').description('issue more client certificates with the existing CA in --dir'))
    .option('--admin <name>', 'admin client certificate CN=<name> (repeatable)', collect, [] as string[])
    .action(
      run(async (opts) => {
        const identities = await issueCertificates({
          dir: opts.dir,
          tenants: opts.tenant,
          admins: opts.admin,
          target: opts.target,
          days: opts.days,
        });
        if (opts.json) io.stdout(`${JSON.stringify(wireJson(identities), null, 2)}\n`);
        else io.stdout(`clients:\n${identitiesText(identities)}`);
      }),
    );

  return certs;
}
