/**
 * The `kolide_grpc` config plugin (docs/protocol/device.md#config-plugin): RequestConfig, rewrite,
 * cache the rewritten config per registration. When the server cannot be
 * used: the cache; with no cache and no node key, `{}`; with a node key but
 * no cache, an error (osqueryd sees status 1 and retries sooner). A config
 * the server returned is served even when caching it fails.
 */
import type { ConfigPlugin } from '../../src/osquery/plugins.js';
import { LauncherError, errorMessage, isLauncherError } from '../../src/errors.js';
import type { ExtensionContext } from './context.js';
import type { Session } from './session.js';
import { rewriteConfig, verboseFor } from './config-rewrite.js';

/** The config source name osqueryd receives. */
export const CONFIG_SOURCE = 'config';

export function createConfigPlugin(ctx: ExtensionContext, session: Session): ConfigPlugin {
  const { opts, state, configCache, log } = ctx;
  const reg = opts.registrationId;
  return {
    kind: 'config',
    name: 'kolide_grpc',
    async genConfig(): Promise<Record<string, string>> {
      try {
        const res = await session.withNodeKey('config', (nodeKey, call) => opts.client.requestConfig(nodeKey, call));
        const config = rewriteConfig(res.config, verboseFor(opts.getUptimeSeconds(), opts.verboseUptimeSeconds));
        try {
          configCache.set(reg, config);
        } catch (err) {
          // Disk full or read-only: the server's config is still good; only the fallback copy is stale (issue 9).
          state.recordError('config_cache', err);
          log.warn({ err: errorMessage(err) }, 'cannot cache the config; serving it uncached');
        }
        state.lastConfigSource = 'server';
        return { [CONFIG_SOURCE]: ctx.quarantine.filterConfig(config) };
      } catch (err) {
        state.recordError('config', err);
        if (isLauncherError(err, 'E_DEVICE_DISABLED')) throw err;
        const cached = configCache.get(reg);
        if (cached) {
          log.warn({ err: errorMessage(err) }, 'device server config unavailable; serving the cached config');
          state.lastConfigSource = 'cache';
          return { [CONFIG_SOURCE]: ctx.quarantine.filterConfig(cached.config) };
        }
        if (ctx.nodeKeys.getNodeKey(reg) === undefined) {
          log.warn({ err: errorMessage(err) }, 'not enrolled and no cached config; serving an empty config');
          state.lastConfigSource = 'empty';
          return { [CONFIG_SOURCE]: '{}' };
        }
        throw new LauncherError('E_CONFIG', `registration ${reg}: no config (device server failed: ${errorMessage(err)}; nothing cached)`, {
          cause: err,
        });
      }
    },
  };
}
