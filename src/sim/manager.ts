/**
 * The ExtensionManager service osqueryd serves on `--extensions_socket`
 * (docs/protocol/osquery-extensions.md#manager-service, docs/protocol/osquery-extensions.md#manager-methods, docs/protocol/osquery-extensions.md#queries). Every method first passes the hang fault's gate:
 * once hung, requests are read and never answered.
 *
 * Handler methods keep exactly the IDL's parameter count: the generated
 * processor picks promise style by `handler.method.length`.
 */
import {
  extensionInfo,
  optionInfo,
  response,
  status,
  type ExtensionManagerHandler,
  type InternalExtensionList,
  type InternalOptionList,
} from '../osquery/protocol.js';
import type { FaultController } from './faults.js';
import type { FlagValues } from './flags.js';
import { glog } from './glog.js';
import type { Registry } from './registry.js';
import type { SqlEngine } from './sql/engine.js';

export interface ManagerDeps {
  registry: Registry;
  flags: FlagValues;
  engine: SqlEngine;
  faults: FaultController;
}

export function managerHandler({ registry, flags, engine, faults }: ManagerDeps): ExtensionManagerHandler {
  return {
    ping: async () => {
      await faults.gate();
      return status(0, 'pong', 0);
    },
    call: async (registryName, item, request) => {
      await faults.gate();
      const res = await registry.call(registryName ?? '', item ?? '', request ?? {});
      // As osqueryd: the manager's uuid (0), rows only on success.
      return response(status(res.status.code, res.status.message, 0), res.status.code === 0 ? res.response : []);
    },
    shutdown: async () => {
      await faults.gate();
    },
    extensions: async () => {
      await faults.gate();
      const out: InternalExtensionList = {};
      for (const [uuid, info] of registry.extensions()) out[String(uuid)] = extensionInfo(info);
      return out;
    },
    options: async () => {
      await faults.gate();
      const out: InternalOptionList = {};
      for (const row of flags.rows()) out[row.name] = optionInfo(row.value, row.default_value, row.type);
      return out;
    },
    registerExtension: async (info, broadcast) => {
      await faults.gate();
      const normalized = extensionInfo({ ...info, name: info?.name ?? '' });
      const st = registry.register(normalized, broadcast ?? {});
      if (st.code === 0) {
        glog.info(
          'interface.cpp',
          85,
          `Registering extension (${normalized.name}, ${st.uuid}, version=${normalized.version}, sdk=${normalized.sdk_version})`,
        );
      } else {
        glog.warning('interface.cpp', 79, `Cannot register extension ${normalized.name}: ${st.message}`);
      }
      return st;
    },
    deregisterExtension: async (uuid) => {
      await faults.gate();
      const st = registry.deregister(Number(uuid));
      if (st.code === 0) glog.info('interface.cpp', 121, `Deregistering extension UUID ${uuid}`);
      return st;
    },
    query: async (sql) => {
      await faults.gate();
      const res = await engine.query(sql ?? '', 'query', '');
      return res.ok ? response(status(0, 'OK', 0), res.rows) : response(status(1, res.message, 0));
    },
    getQueryColumns: async (sql) => {
      await faults.gate();
      const res = engine.columns(sql ?? '');
      return res.ok ? response(status(0, 'OK', 0), res.rows) : response(status(1, res.message, 0));
    },
  };
}
