/**
 * The project's side of bench/thrift-peers, in its own process: the real
 * ExtensionServer from src/osquery serving the 1000x10 table `bench_rows` and
 * the real kolide_grpc logger plugin (every logString committed to its SQLite
 * log buffer before the answer), registered with a minimal manager on the
 * same process (idle after registration: no manager pings).
 *
 * `--root DIR` picks the build whose modules are loaded (this checkout's
 * dist/ by default, or another checkout's, to measure an older commit with
 * the same driver). Prints `{"socket": path}` once serving; SIGTERM stops it.
 * Usage: node project-server.js --dir TMPDIR [--root DIST_ROOT]
 */
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchManagerHandler, benchTable } from '../thrift-fixture.js';
import { parseRegistrationId as rid } from '../../src/registration.js';

type ExtensionServerModule = typeof import('../../src/osquery/extension-server.js');
type ServerModule = typeof import('../../src/osquery/server.js');
type ProtocolModule = typeof import('../../src/osquery/protocol.js');
type StoreModule = typeof import('../../src/store/database.js');
type DeviceModule = typeof import('../../src/device/index.js');
type KolideModule = typeof import('../../extensions/kolide_grpc/index.js');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const root = resolve(arg('root') ?? join(dirname(fileURLToPath(import.meta.url)), '../..'));
const dir = arg('dir');
if (!dir) throw new Error('project-server: --dir is required');
const load = <T>(rel: string): Promise<T> => import(pathToFileURL(join(root, rel)).href) as Promise<T>;

const [{ ExtensionServer }, { ThriftServer }, protocol, { openDatabase }, { DeviceClient }, { createKolideExtension }] = await Promise.all([
  load<ExtensionServerModule>('src/osquery/extension-server.js'),
  load<ServerModule>('src/osquery/server.js'),
  load<ProtocolModule>('src/osquery/protocol.js'),
  load<StoreModule>('src/store/database.js'),
  load<DeviceModule>('src/device/index.js'),
  load<KolideModule>('extensions/kolide_grpc/index.js'),
]);
const managerPath = join(dir, 'm.em');
const managerHandler = benchManagerHandler(protocol, 'kolide_grpc');
// A factory, as the older ThriftServer takes.
const manager = new ThriftServer(managerPath, () => new protocol.ExtensionManagerProcessor(managerHandler));
await manager.listen();

const db = openDatabase(join(dir, 'launcher.db'));
// Never contacted: the extension is not started, so it neither enrolls nor publishes.
const client = new DeviceClient({ serverUrl: 'http://127.0.0.1:9', insecureTransport: true, maxAttempts: 1, timeoutMs: 1000 });
const kolide = createKolideExtension({
  registrationId: rid('bench'),
  enrollSecret: 'bench-secret',
  client,
  db,
  publishIntervalMs: 3_600_000,
});
const ext = new ExtensionServer({ name: 'kolide_grpc', managerPath, plugins: [benchTable, kolide.loggerPlugin], pingIntervalMs: 0 });
await ext.start();
process.stdout.write(`${JSON.stringify({ socket: ext.socketPath, root })}\n`);

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await ext.stop();
    await manager.close();
    await kolide.stop();
    client.close();
    db.close();
    process.exit(0);
  })();
});
