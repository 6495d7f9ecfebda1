/**
 * A registration's `isolation:` from the config file or the control API
 * (snake_case) as the store keeps it (issue 22). The mode is checked again by
 * the store (validateIsolation), so a value that got past neither the config
 * schema nor the control API's validation still gets a clear error.
 */
import type { IsolationSettings } from '../store/registrations.js';

export function isolationFromConfig(c: { mode?: string | undefined; disable_tables?: readonly string[] | undefined }): IsolationSettings {
  const out: IsolationSettings = {};
  if (c.mode !== undefined) out.mode = c.mode as NonNullable<IsolationSettings['mode']>;
  if (c.disable_tables !== undefined) out.disableTables = [...c.disable_tables];
  return out;
}
