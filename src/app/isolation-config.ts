/**
 * A registration's `isolation:` from the config file (snake_case) as the
 * store keeps it (issue 22).
 */
import type { z } from 'zod';
import type { isolationSchema } from '../config/schema.js';
import type { IsolationSettings } from '../store/registrations.js';

export function isolationFromConfig(c: z.infer<typeof isolationSchema>): IsolationSettings {
  const out: IsolationSettings = {};
  if (c.mode !== undefined) out.mode = c.mode;
  if (c.disable_tables !== undefined) out.disableTables = [...c.disable_tables];
  return out;
}
