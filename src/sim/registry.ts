/**
 * osqueryd's plugin registries: the core's own items and the routes each
 * extension broadcast, the registered extensions' metadata, the active
 * plugin of each registry, and registerExtension's checks in osqueryd's
 * order with its exact messages (docs/protocol/osquery-extensions.md#registration-checks).
 *
 * As in osqueryd, routes and metadata are kept apart: a registration that
 * fails half-way (unknown registry, invalid table routes) leaves the routes
 * it already added under the unused uuid; the watcher drops them when their
 * socket never appears.
 */
import { randomInt } from 'node:crypto';
import {
  response,
  status,
  type ExtensionRegistry,
  type ExtensionResponse,
  type ExtensionStatus,
  type InternalExtensionInfo,
  type PluginRequest,
  type PluginResponse,
} from '../osquery/protocol.js';
import { versionAtLeast } from './version.js';

/** Answers one call(registry, item, request) inside the core. */
export interface CorePlugin {
  call(request: PluginRequest): Promise<ExtensionResponse> | ExtensionResponse;
}

export const REGISTRY_NAMES = [
  'config',
  'config_parser',
  'database',
  'distributed',
  'enroll',
  'event_publisher',
  'event_subscriber',
  'killswitch',
  'logger',
  'numeric_monitoring',
  'sql',
  'table',
] as const;

/** Core items that exist by name only (the stand-in does not run them). */
const NAME_ONLY: Record<string, string[]> = {
  config_parser: [
    'auto_table_construction',
    'decorators',
    'events',
    'feature_vectors',
    'file_paths',
    'logger',
    'options',
    'packs',
    'views',
  ],
  database: ['ephemeral', 'rocksdb'],
  enroll: ['tls'],
  event_publisher: ['inotify', 'syslog', 'udev'],
  event_subscriber: ['file_events', 'syslog_events', 'hardware_events'],
  killswitch: ['killswitch_filesystem', 'killswitch_tls'],
  numeric_monitoring: ['filesystem'],
};

const nameOnly: CorePlugin = { call: () => response(status(1, 'This plugin is not implemented by osqueryd-sim')) };

export interface RegistryEvents {
  tableAdded(uuid: number, name: string, routes: PluginResponse): void;
  tableRemoved(name: string): void;
}

export type ExtensionCaller = (uuid: number, registry: string, item: string, request: PluginRequest) => Promise<ExtensionResponse>;

export type Resolved =
  | { kind: 'core'; name: string; plugin: CorePlugin }
  | { kind: 'extension'; name: string; uuid: number; routes: PluginResponse };

type Broadcast = Map<string, Map<string, PluginResponse>>;

export class Registry {
  private readonly core = new Map<string, Map<string, CorePlugin>>();
  private readonly routes = new Map<number, Broadcast>();
  private readonly infos = new Map<number, InternalExtensionInfo>();
  private readonly active = new Map<string, string>();
  private readonly events: RegistryEvents;
  private readonly callExtension: ExtensionCaller;

  constructor(events: RegistryEvents, callExtension: ExtensionCaller) {
    this.events = events;
    this.callExtension = callExtension;
    for (const r of REGISTRY_NAMES) this.core.set(r, new Map());
    for (const [r, names] of Object.entries(NAME_ONLY)) for (const n of names) this.addCore(r, n, nameOnly);
  }

  addCore(registry: string, name: string, plugin: CorePlugin): void {
    this.core.get(registry)!.set(name, plugin);
  }

  setActive(registry: string, name: string): void {
    this.active.set(registry, name);
  }

  /** The active plugin name(s) of a registry; logger may be a comma list. */
  activeName(registry: string): string {
    return this.active.get(registry) ?? '';
  }

  /** Registered extensions (metadata), uuid-keyed. */
  extensions(): Map<number, InternalExtensionInfo> {
    return this.infos;
  }

  /** Every uuid that owns routes (the watcher's list). */
  routeUuids(): number[] {
    return [...this.routes.keys()];
  }

  register(info: InternalExtensionInfo, broadcast: ExtensionRegistry): ExtensionStatus {
    // 1. Refresh: metadata whose routes are gone is dropped.
    for (const uuid of this.infos.keys()) if (!this.routes.has(uuid)) this.infos.delete(uuid);
    for (const existing of this.infos.values()) {
      if (existing.name === info.name) return status(1, 'Duplicate extension registered');
    }
    // 2. SDK version.
    if (!versionAtLeast('1.7.7', info.sdk_version ?? '')) return status(1, 'Incompatible extension SDK version');
    // 3. A fresh 16-bit uuid.
    let uuid: number;
    do uuid = randomInt(1, 65536);
    while (this.routes.has(uuid) || this.infos.has(uuid));
    // 4. Conflicts, across all known registries, before anything is added.
    const registries = Object.keys(broadcast ?? {}).sort();
    for (const r of registries) {
      if (!this.core.has(r)) continue;
      for (const item of Object.keys(broadcast[r] ?? {})) {
        if (this.resolveExact(r, item)) {
          return status(1, `Failed adding registry: Registry item ${item} conflicts with another item of the same name.`);
        }
      }
    }
    // 5–6. Add registry by registry; earlier ones stay when a later one fails.
    for (const r of registries) {
      if (!this.core.has(r)) return status(1, `Failed adding registry: Unknown registry: ${r}`);
      for (const item of Object.keys(broadcast[r] ?? {}).sort()) {
        const routes = broadcast[r]![item] ?? [];
        if (r === 'table' && routes.length === 0) return status(1, 'Failed adding registry: Invalid route info');
        this.addRoute(uuid, r, item, routes);
      }
    }
    this.routes.set(uuid, this.routes.get(uuid) ?? new Map());
    this.infos.set(uuid, info);
    return status(0, 'OK', uuid);
  }

  deregister(uuid: number): ExtensionStatus {
    if (!this.infos.has(uuid)) return status(1, 'No extension UUID found');
    this.remove(uuid);
    return status(0, 'OK', 0);
  }

  /** Drop an extension's routes (tables detached) and metadata. */
  remove(uuid: number): boolean {
    const had = this.routes.has(uuid) || this.infos.has(uuid);
    const broadcast = this.routes.get(uuid);
    this.routes.delete(uuid);
    this.infos.delete(uuid);
    for (const name of broadcast?.get('table')?.keys() ?? []) this.events.tableRemoved(name);
    return had;
  }

  /** The item of that name: core first, then extension routes. */
  resolveExact(registry: string, item: string): Resolved | undefined {
    const plugin = this.core.get(registry)?.get(item);
    if (plugin) return { kind: 'core', name: item, plugin };
    for (const [uuid, broadcast] of this.routes) {
      const routes = broadcast.get(registry)?.get(item);
      if (routes) return { kind: 'extension', name: item, uuid, routes };
    }
    return undefined;
  }

  /** An empty or unknown item falls back to the registry's active plugin (the first, for a list). */
  resolve(registry: string, item: string): Resolved | undefined {
    return (
      (item !== '' ? this.resolveExact(registry, item) : undefined) ??
      this.resolveExact(registry, this.activeName(registry).split(',')[0]!.trim())
    );
  }

  async call(registry: string, item: string, request: PluginRequest): Promise<ExtensionResponse> {
    if (!this.core.has(registry)) return response(status(1, `Cannot call registry item: ${registry}`));
    const target = this.resolve(registry, item);
    if (!target) return response(status(1, `Cannot call registry item: ${item}`));
    return this.callResolved(registry, target, request);
  }

  callResolved(registry: string, target: Resolved, request: PluginRequest): Promise<ExtensionResponse> {
    if (target.kind === 'core') return Promise.resolve(target.plugin.call(request));
    return this.callExtension(target.uuid, registry, target.name, request);
  }

  /** Rows for osquery_registry. */
  rows(): Array<Record<string, string | number>> {
    const out: Array<Record<string, string | number>> = [];
    const isActive = (r: string, n: string) =>
      this.activeName(r)
        .split(',')
        .map((s) => s.trim())
        .includes(n)
        ? 1
        : 0;
    for (const [r, items] of this.core)
      for (const n of items.keys()) out.push({ registry: r, name: n, owner_uuid: 0, internal: 0, active: isActive(r, n) });
    for (const [uuid, broadcast] of this.routes) {
      for (const [r, items] of broadcast)
        for (const n of items.keys()) out.push({ registry: r, name: n, owner_uuid: uuid, internal: 0, active: isActive(r, n) });
    }
    return out;
  }

  private addRoute(uuid: number, registry: string, item: string, routes: PluginResponse): void {
    let broadcast = this.routes.get(uuid);
    if (!broadcast) this.routes.set(uuid, (broadcast = new Map()));
    let items = broadcast.get(registry);
    if (!items) broadcast.set(registry, (items = new Map()));
    items.set(item, routes);
    if (registry === 'table') this.events.tableAdded(uuid, item, routes);
  }
}
