/**
 * osqueryd's built-in `filesystem` config plugin: genConfig reads
 * `--config_path` (one source, named by the path); genPack reads the pack
 * file a config names by path.
 */
import { readFileSync } from 'node:fs';
import { response, status } from '../osquery/protocol.js';
import type { FlagValues } from './flags.js';
import type { CorePlugin } from './registry.js';

export function filesystemConfigPlugin(flags: FlagValues): CorePlugin {
  return {
    call(request) {
      if (request.action === 'genConfig') {
        const path = flags.get('config_path');
        try {
          return response(status(0, 'OK'), [{ [path]: readFileSync(path, 'utf8') }]);
        } catch {
          return response(status(1, `config file does not exist: ${path}`));
        }
      }
      if (request.action === 'genPack') {
        const name = request.name ?? '';
        const path = request.value ?? '';
        try {
          return response(status(0, 'OK'), [{ [name]: readFileSync(path, 'utf8') }]);
        } catch {
          return response(status(1, `Cannot read pack ${name} from ${path}`));
        }
      }
      return response(status(1, 'Config plugin action unknown'));
    },
  };
}
