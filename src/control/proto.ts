import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LauncherError } from '../errors.js';
import type { ProtoGrpcType } from './gen/launcher.js';
import type { LauncherClient, LauncherDefinition } from './gen/launcher/v1/Launcher.js';

/** Import path of the API inside proto/. */
export const PROTO_FILE = 'launcher/v1/launcher.proto';

/**
 * Options shared with scripts/gen-proto.mjs (the generated types assume them):
 * field names as written, 64-bit integers as decimal strings, defaults for
 * absent non-optional fields, no virtual oneof fields.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: false,
};

/** The repository's proto/ directory, found upwards from this module (src/ when run by vitest, dist/src/ when built). */
export function findProtoRoot(start = dirname(fileURLToPath(import.meta.url))): string {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'proto', PROTO_FILE))) return join(dir, 'proto');
    const parent = dirname(dir);
    if (parent === dir) {
      throw new LauncherError('E_CONFIG', `cannot find proto/${PROTO_FILE} in ${start} or any parent directory`);
    }
    dir = parent;
  }
}

export interface LauncherApi {
  service: LauncherDefinition;
  Client: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => LauncherClient;
}

let cached: LauncherApi | undefined;

/** The `launcher.v1.Launcher` service, loaded once from the .proto at runtime. */
export function launcherApi(): LauncherApi {
  if (!cached) {
    const definition = protoLoader.loadSync(PROTO_FILE, { ...LOADER_OPTIONS, includeDirs: [findProtoRoot()] });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
    const ctor = loaded.launcher.v1.Launcher;
    cached = { service: ctor.service, Client: ctor };
  }
  return cached;
}
