/**
 * A real TUF repository for tests (issue 17): root, targets, snapshot and
 * timestamp metadata built with @tufjs/models and signed with ed25519 keys
 * made here, served with the archives over HTTP on 127.0.0.1. Faults a test
 * can turn on: a target whose bytes differ from its signed hashes, expired
 * metadata, a signature by a key the root does not trust, an older metadata
 * version (replay), and a server that stops sending mid-download.
 */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Key, Metadata, MetaFile, Root, Signature, Snapshot, TargetFile, Targets, Timestamp } from '@tufjs/models';
import { create } from 'tar';

const ROLES = ['root', 'targets', 'snapshot', 'timestamp'] as const;
type RoleName = (typeof ROLES)[number];

interface SigningKey {
  priv: KeyObject;
  key: Key;
}

function makeKey(): SigningKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const keyID = createHash('sha256').update(pem).digest('hex');
  return { priv: privateKey, key: new Key({ keyID, keyType: 'ed25519', scheme: 'ed25519', keyVal: { public: pem } }) };
}

function signWith(md: Metadata<Root | Targets | Snapshot | Timestamp>, k: SigningKey): void {
  md.sign((data) => new Signature({ keyID: k.key.keyID, sig: sign(null, data, k.priv).toString('hex') }));
}

const inDays = (d: number): string => new Date(Date.now() + d * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface PublishOptions {
  /** Expiry of the timestamp metadata (default: in 7 days). */
  timestampExpires?: string;
  /** Sign the timestamp with a key the root does not know. */
  badTimestampSignature?: boolean;
  /** Sign targets with a key the root does not know. */
  badTargetsSignature?: boolean;
}

export class TufTestRepo {
  readonly keys: Record<RoleName, SigningKey>;
  private readonly files = new Map<string, Buffer>();
  private readonly targetsList = new Map<string, TargetFile>();
  private versions = { targets: 0, snapshot: 0, timestamp: 0 };
  private readonly rootMd: Metadata<Root>;
  /** URL paths answered with only part of the body and then no more (a hanging server). */
  readonly hangOn = new Set<string>();
  /** URL paths whose bytes are replaced (after signing) by these. */
  readonly tamper = new Map<string, Buffer>();
  private readonly server: Server;
  private readonly hanging = new Set<ServerResponse>();
  url = '';
  requests: string[] = [];

  private constructor() {
    this.keys = { root: makeKey(), targets: makeKey(), snapshot: makeKey(), timestamp: makeKey() };
    const root = new Root({ version: 1, specVersion: '1.0.31', expires: inDays(365), consistentSnapshot: false });
    for (const r of ROLES) root.addKey(this.keys[r].key, r);
    this.rootMd = new Metadata(root);
    signWith(this.rootMd, this.keys.root);
    this.files.set('/metadata/1.root.json', Buffer.from(JSON.stringify(this.rootMd.toJSON())));
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      this.requests.push(path);
      const body = this.tamper.get(path) ?? this.files.get(path);
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      if (this.hangOn.has(path)) {
        res.writeHead(200, { 'content-length': body.length });
        res.write(body.subarray(0, Math.floor(body.length / 2)));
        this.hanging.add(res);
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
  }

  static async start(): Promise<TufTestRepo> {
    const repo = new TufTestRepo();
    await new Promise<void>((r) => repo.server.listen(0, '127.0.0.1', r));
    repo.url = `http://127.0.0.1:${(repo.server.address() as AddressInfo).port}`;
    return repo;
  }

  get metadataUrl(): string {
    return `${this.url}/metadata`;
  }

  get targetsUrl(): string {
    return `${this.url}/targets`;
  }

  /** The root clients trust first. */
  writeTrustedRoot(file: string): string {
    writeFileSync(file, this.files.get('/metadata/1.root.json')!);
    return file;
  }

  /** Add a target file (any bytes) under `name`, with optional custom metadata. */
  addTarget(name: string, body: Buffer, custom?: Record<string, string>): void {
    const hashes = { sha256: createHash('sha256').update(body).digest('hex') };
    this.targetsList.set(
      name,
      new TargetFile({ path: name, length: body.length, hashes, ...(custom ? { unrecognizedFields: { custom } } : {}) }),
    );
    this.files.set(`/targets/${name}`, body);
  }

  /** Point `channel` at `version`'s archive (a signed custom field). */
  setChannel(platform: string, channel: string, version: string): void {
    this.addTarget(`osqueryd/${platform}/${channel}/release.json`, Buffer.from('{}'), {
      target: `osqueryd/${platform}/osqueryd-${version}.tar.gz`,
    });
  }

  /** Sign and serve new targets, snapshot and timestamp metadata. */
  publish(o: PublishOptions = {}): void {
    this.versions.targets += 1;
    this.versions.snapshot += 1;
    this.versions.timestamp += 1;
    const targets = new Targets({ version: this.versions.targets, specVersion: '1.0.31', expires: inDays(30) });
    for (const t of this.targetsList.values()) targets.addTarget(t);
    const tmd = new Metadata(targets);
    signWith(tmd, o.badTargetsSignature ? makeKey() : this.keys.targets);
    const tBytes = Buffer.from(JSON.stringify(tmd.toJSON()));
    const snap = new Snapshot({
      version: this.versions.snapshot,
      specVersion: '1.0.31',
      expires: inDays(30),
      meta: { 'targets.json': new MetaFile({ version: this.versions.targets }) },
    });
    const smd = new Metadata(snap);
    signWith(smd, this.keys.snapshot);
    const sBytes = Buffer.from(JSON.stringify(smd.toJSON()));
    const ts = new Timestamp({
      version: this.versions.timestamp,
      specVersion: '1.0.31',
      expires: o.timestampExpires ?? inDays(7),
      snapshotMeta: new MetaFile({ version: this.versions.snapshot }),
    });
    const tsmd = new Metadata(ts);
    signWith(tsmd, o.badTimestampSignature ? makeKey() : this.keys.timestamp);
    this.files.set('/metadata/targets.json', tBytes);
    this.files.set('/metadata/snapshot.json', sBytes);
    this.files.set('/metadata/timestamp.json', Buffer.from(JSON.stringify(tsmd.toJSON())));
  }

  /** Serve the metadata of an earlier publish again (a replay); returns a restore function. */
  snapshotFiles(): Map<string, Buffer> {
    return new Map([...this.files].filter(([k]) => k.startsWith('/metadata/')));
  }

  restoreFiles(saved: Map<string, Buffer>): void {
    for (const [k, v] of saved) this.files.set(k, v);
  }

  async close(): Promise<void> {
    for (const r of this.hanging) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/**
 * A stand-in osqueryd "release": an archive holding `osqueryd`, a wrapper
 * script that runs bin/osqueryd-sim reporting `version`, with extra
 * environment (e.g. faults that crash it).
 */
export async function simArchive(dir: string, repoRoot: string, version: string, env: Record<string, string> = {}): Promise<Buffer> {
  const src = join(dir, `pkg-${version}`);
  mkdirSync(src, { recursive: true });
  const exports = Object.entries({ OSQUERYD_SIM_VERSION: version, ...env })
    .map(([k, v]) => `${k}='${v.replace(/'/g, `'\\''`)}'; export ${k}`)
    .join('\n');
  writeFileSync(
    join(src, 'osqueryd'),
    `#!/bin/sh\n# osqueryd ${version} (a test release of the stand-in)\n${exports}\nexec '${process.execPath}' '${join(repoRoot, 'bin/osqueryd-sim')}' "$@"\n`,
  );
  chmodSync(join(src, 'osqueryd'), 0o755);
  const file = join(dir, `osqueryd-${version}.tar.gz`);
  await create({ gzip: true, file, cwd: src, portable: true }, ['osqueryd']);
  return readFileSync(file);
}
