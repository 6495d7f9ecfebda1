export { DevServer, startDevServer } from './server.js';
export type { DevServerOptions, DevServerStats, RecordedRequest } from './server.js';
export { DevServerStore, DEFAULT_TENANT_CONFIG } from './store.js';
export type { TenantSpec, NodeRecord, StoredLog, StoredResult, LogFilter, ResultFilter } from './store.js';
export { FAULT_MODES } from './faults.js';
export { generateAdminToken, writeAdminTokenFile, bearerMatches } from './admin-token.js';
export type { Fault, FaultMode } from './faults.js';
export { RPC_METHODS } from './rpc.js';
export type { RpcMethod } from './rpc.js';
