import { existsSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { LauncherError, errorMessage } from '../errors.js';
import { ExtensionManagerClient } from './client.js';
import { ThriftServer } from './server.js';
import { checkManagerSocketPath, extensionSocketPath } from './socket-path.js';
import { dispatchPluginCall, routeInfo, type Plugin, type Registry } from './plugins.js';
import {
  ExtensionProcessor,
  response,
  status,
  type ExtensionHandler,
  type ExtensionRegistry,
  type ExtensionResponse,
  type ExtensionStatus,
  type PluginRequest,
} from './protocol.js';

export interface ExtensionServerOptions {
  /** Extension name; osqueryd refuses a second live one with the same name. */
  name: string;
  version?: string;
  /** osqueryd's `--extensions_socket`. */
  managerPath: string;
  plugins: readonly Plugin[];
  /** Client of the manager socket; by default the server opens its own. */
  client?: ExtensionManagerClient;
  /** How often the manager is pinged; 0 disables watching. Default 3 s. */
  pingIntervalMs?: number;
  /** Per-call timeout towards the manager. Default 5 s. */
  timeoutMs?: number;
  logger?: Logger;
}

export type ExtensionServerState = 'new' | 'registering' | 'serving' | 'stopped';

/**
 * An osquery extension: registers its plugins with osqueryd, serves
 * ping/call/shutdown on `<manager socket>.<uuid>`, watches the manager and
 * stops when it is gone, and deregisters on stop.
 *
 * `done` settles when the server stops for any reason, with the reason:
 * undefined for stop(), an error when the manager went away or osqueryd
 * called shutdown().
 */
export class ExtensionServer {
  readonly name: string;
  readonly managerPath: string;
  private readonly version: string;
  private readonly plugins = new Map<string, Plugin>();
  private readonly client: ExtensionManagerClient;
  private readonly ownsClient: boolean;
  private readonly pingIntervalMs: number;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private server: ThriftServer | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private resolveDone!: (reason: Error | undefined) => void;
  private _state: ExtensionServerState = 'new';
  private _uuid = 0;
  readonly done: Promise<Error | undefined>;
  /** Calls served, by registry (for stats). */
  readonly callCounts: Record<string, number> = {};

  constructor(options: ExtensionServerOptions) {
    checkManagerSocketPath(options.managerPath);
    this.name = options.name;
    this.version = options.version ?? '';
    this.managerPath = options.managerPath;
    for (const p of options.plugins) {
      const key = `${p.kind}/${p.name}`;
      if (this.plugins.has(key))
        throw new LauncherError('E_INVALID_ARGUMENT', `extension ${this.name}: two ${p.kind} plugins named ${p.name}`);
      this.plugins.set(key, p);
    }
    this.ownsClient = options.client === undefined;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.client = options.client ?? new ExtensionManagerClient(this.managerPath, { timeoutMs: this.timeoutMs });
    this.pingIntervalMs = options.pingIntervalMs ?? 3_000;
    this.log = options.logger ?? silentLogger();
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get state(): ExtensionServerState {
    return this._state;
  }

  get uuid(): number {
    return this._uuid;
  }

  get socketPath(): string {
    return extensionSocketPath(this.managerPath, this._uuid);
  }

  /** The registry sent to registerExtension: every kind osquery-go sends, some empty. */
  registry(): ExtensionRegistry {
    const reg: ExtensionRegistry = { config: {}, distributed: {}, logger: {}, table: {} };
    for (const p of this.plugins.values()) {
      (reg[p.kind] ??= {})[p.name] = routeInfo(p);
    }
    return reg;
  }

  /** Register with osqueryd and start serving. Returns the uuid osqueryd assigned. */
  async start(): Promise<number> {
    if (this._state !== 'new') throw new LauncherError('E_INTERNAL', `extension ${this.name} already started (${this._state})`);
    this.setState('registering');
    try {
      this._uuid = await this.client.registerExtension({ name: this.name, version: this.version }, this.registry());
      this.server = new ThriftServer(this.socketPath, new ExtensionProcessor(this.handler()), { logger: this.log });
      await this.server.listen();
    } catch (err) {
      await this.finish(err instanceof Error ? err : new Error(String(err)), false);
      throw err;
    }
    this.setState('serving');
    this.log.info({ uuid: this._uuid, socket: this.socketPath }, 'extension registered');
    if (this.pingIntervalMs > 0) this.scheduleWatch();
    return this._uuid;
  }

  /** In-process dispatch of one plugin call (also what the socket serves). */
  call(registry: string, item: string, request: PluginRequest): Promise<ExtensionResponse> {
    this.callCounts[registry] = (this.callCounts[registry] ?? 0) + 1;
    const plugin = this.plugins.get(`${registry}/${item}`);
    if (!plugin) {
      return Promise.resolve(response(status(1, `Unknown registry plugin: ${registry}/${item}`)));
    }
    // The dispatch's own promise, not one more around it (issue 14: fewer hops per log line).
    return dispatchPluginCall(plugin, request);
  }

  hasPlugin(kind: Registry, name: string): boolean {
    return this.plugins.has(`${kind}/${name}`);
  }

  /**
   * Graceful stop: deregister (best effort), stop serving. Idempotent.
   * `managerGone`: the caller knows osqueryd exited, so deregistering cannot
   * succeed and is skipped (it is skipped too when the manager socket file is gone).
   */
  stop(options: { managerGone?: boolean } = {}): Promise<void> {
    return this.finish(undefined, options.managerGone !== true);
  }

  private handler(): ExtensionHandler {
    return {
      ping: (): ExtensionStatus => status(0, 'OK', this._uuid),
      call: (registry, item, request) => this.call(registry, item, request ?? {}),
      shutdown: () => {
        // osqueryd is stopping: answer first, then stop without deregistering.
        setImmediate(() => void this.finish(new LauncherError('E_SHUTDOWN', `osqueryd asked extension ${this.name} to shut down`), false));
      },
    };
  }

  private scheduleWatch(): void {
    this.watchTimer = setTimeout(() => void this.watch(), this.pingIntervalMs);
  }

  private async watch(): Promise<void> {
    if (this._state !== 'serving') return;
    try {
      const st = await this.client.ping(this.timeoutMs);
      if (st.code === 1) throw new Error(`ping returned code 1: ${st.message}`);
    } catch (err) {
      if (this._state !== 'serving') return;
      this.log.warn({ err: errorMessage(err) }, 'extension manager is gone; stopping extension');
      await this.finish(
        new LauncherError('E_THRIFT_CONNECTION', `extension manager ${this.managerPath} is gone: ${errorMessage(err)}`, { cause: err }),
        false,
      );
      return;
    }
    if (this._state === 'serving') this.scheduleWatch();
  }

  private finish(reason: Error | undefined, deregister: boolean): Promise<void> {
    this.stopping ??= (async () => {
      const wasServing = this._state === 'serving';
      this.setState('stopped');
      if (this.watchTimer) clearTimeout(this.watchTimer);
      if (wasServing && this._uuid !== 0) {
        // issue 14: a call to a manager that is gone only waits for its timeout; skip it.
        const gone = !deregister ? 'osqueryd exited or shut us down' : !existsSync(this.managerPath) ? 'manager socket is gone' : undefined;
        if (gone) {
          this.log.debug({ uuid: this._uuid, reason: gone }, 'deregister skipped: manager gone');
        } else {
          this.log.debug({ uuid: this._uuid }, 'deregistering extension');
          await this.client.deregisterExtension(this._uuid, Math.min(this.timeoutMs, 2_000)).catch((err: unknown) => {
            this.log.debug({ err: errorMessage(err) }, 'deregister failed (manager may be gone)');
          });
        }
      }
      await this.server?.close();
      if (this.ownsClient) this.client.close();
      this.resolveDone(reason);
    })();
    return this.stopping;
  }

  private setState(next: ExtensionServerState): void {
    if (this._state === next) return;
    this.log.debug({ from: this._state, to: next }, 'extension server state');
    this._state = next;
  }
}
