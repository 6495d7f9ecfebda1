export { createKolideExtension, EXTENSION_NAME } from './extension.js';
export type { KolideExtension } from './extension.js';
export type { KolideExtensionOptions, LauncherIdentity } from './options.js';
export { DEFAULT_MAX_BYTES_PER_BATCH } from './options.js';
export type { KolideExtensionStatus, LastError } from './state.js';
export { rewriteConfig, verboseFor } from './config-rewrite.js';
export { toDeviceResults } from './distributed-plugin.js';
export { readEnrollSecret, munemoOf } from './secret.js';
export { LAUNCHER_INFO_COLUMNS } from './launcher-info-table.js';
