#!/usr/bin/env node
// Fails (exit 1) when the control API in proto/launcher/v*/ breaks
// compatibility with the committed baseline proto/launcher/baseline/
// (adr/0003-control-api-compatibility.md). It loads both trees with
// protobufjs (the parser @grpc/proto-loader uses) and compares descriptors
// with buf's WIRE_JSON rules plus "never delete": every package, service,
// method, message, field, enum and enum value of the baseline must still be
// there with the same number, name, type, label and streaming.
//
//   node scripts/check-proto-compat.mjs [--current DIR] [--baseline DIR]
//
// DIR is a proto root holding launcher/v<N>/*.proto; defaults: proto/ and
// proto/launcher/baseline/. Exit codes: 0 compatible, 1 breaking, 2 could not run.
//
// When a release ships, refresh the baseline:
//   cp proto/launcher/v1/launcher.proto proto/launcher/baseline/launcher/v1/
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i === -1) return fallback;
  const value = process.argv[i + 1];
  if (!value) {
    console.error(`check-proto-compat: ${name} needs a directory`);
    process.exit(2);
  }
  return resolve(value);
}

const current = option('--current', join(root, 'proto'));
const baseline = option('--baseline', join(root, 'proto/launcher/baseline'));

/** Every launcher/v<N>/*.proto under a proto root, parsed into one protobufjs Root. */
function load(dir) {
  const api = join(dir, 'launcher');
  const versions = existsSync(api) ? readdirSync(api).filter((d) => /^v\d+$/.test(d)) : [];
  const files = versions.flatMap((v) =>
    readdirSync(join(api, v))
      .filter((f) => f.endsWith('.proto'))
      .map((f) => join(api, v, f)),
  );
  if (files.length === 0) throw new Error(`no launcher/v<N>/*.proto under ${dir}`);
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => (existsSync(join(dir, target)) ? join(dir, target) : target);
  r.loadSync(files, { keepCase: true });
  r.resolveAll();
  return r;
}

/** Flatten a Root into maps of fully qualified name → type/service/enum. */
function index(r) {
  const out = { messages: new Map(), enums: new Map(), services: new Map(), packages: new Set() };
  const walk = (ns) => {
    for (const obj of ns.nestedArray ?? []) {
      const name = obj.fullName.replace(/^\./, '');
      if (obj instanceof protobuf.Type) out.messages.set(name, obj);
      else if (obj instanceof protobuf.Enum) out.enums.set(name, obj);
      else if (obj instanceof protobuf.Service) out.services.set(name, obj);
      else if (obj instanceof protobuf.Namespace) out.packages.add(name);
      if (obj.nestedArray) walk(obj);
    }
  };
  walk(r);
  return out;
}

const label = (f) => (f.map ? 'map' : f.repeated ? 'repeated' : f.options?.proto3_optional ? 'optional' : 'singular');
const typeOf = (f) =>
  f.map
    ? `map<${f.keyType}, ${f.resolvedType ? f.resolvedType.fullName.replace(/^\./, '') : f.type}>`
    : f.resolvedType
      ? f.resolvedType.fullName.replace(/^\./, '')
      : f.type;

function compare(base, cur) {
  const problems = [];
  const b = index(base);
  const c = index(cur);
  for (const p of b.packages) if (!c.packages.has(p)) problems.push(`package ${p} was deleted`);
  for (const [name, bm] of b.messages) {
    const cm = c.messages.get(name);
    if (!cm) {
      problems.push(`message ${name} was deleted`);
      continue;
    }
    for (const bf of bm.fieldsArray) {
      const cf = cm.fieldsArray.find((f) => f.id === bf.id);
      const where = `${name}.${bf.name} (field ${bf.id})`;
      if (!cf) {
        const moved = cm.fieldsArray.find((f) => f.name === bf.name);
        problems.push(
          moved
            ? `field ${where} was renumbered to ${moved.id}, which changes the wire format (missed: ${bf.name})`
            : `field ${where} was deleted`,
        );
        continue;
      }
      if (cf.name !== bf.name) problems.push(`field ${where} changed name to ${cf.name} (breaks JSON)`);
      if (typeOf(cf) !== typeOf(bf)) problems.push(`field ${where} changed type from ${typeOf(bf)} to ${typeOf(cf)}`);
      if (label(cf) !== label(bf)) problems.push(`field ${where} changed label from ${label(bf)} to ${label(cf)}`);
      if ((cf.partOf?.name ?? null) !== (bf.partOf?.name ?? null)) problems.push(`field ${where} moved between oneofs`);
    }
  }
  for (const [name, be] of b.enums) {
    const ce = c.enums.get(name);
    if (!ce) {
      problems.push(`enum ${name} was deleted`);
      continue;
    }
    for (const [valueName, num] of Object.entries(be.values)) {
      if (ce.values[valueName] === undefined) problems.push(`enum value ${name}.${valueName} (${num}) was deleted`);
      else if (ce.values[valueName] !== num)
        problems.push(`enum value ${name}.${valueName} changed number from ${num} to ${ce.values[valueName]}`);
    }
  }
  for (const [name, bs] of b.services) {
    const cs = c.services.get(name);
    if (!cs) {
      problems.push(`service ${name} was deleted`);
      continue;
    }
    for (const bmeth of bs.methodsArray) {
      const cmeth = cs.methods[bmeth.name];
      const where = `rpc ${name}.${bmeth.name}`;
      if (!cmeth) {
        problems.push(`${where} was deleted`);
        continue;
      }
      if (cmeth.resolvedRequestType.fullName !== bmeth.resolvedRequestType.fullName) problems.push(`${where} changed request type`);
      if (cmeth.resolvedResponseType.fullName !== bmeth.resolvedResponseType.fullName) problems.push(`${where} changed response type`);
      if (!!cmeth.requestStream !== !!bmeth.requestStream) problems.push(`${where} changed client streaming`);
      if (!!cmeth.responseStream !== !!bmeth.responseStream) problems.push(`${where} changed server streaming`);
    }
  }
  return problems;
}

let base;
let cur;
try {
  base = load(baseline);
  cur = load(current);
} catch (err) {
  console.error(`check-proto-compat: cannot load protos: ${err.message}`);
  process.exit(2);
}
const problems = compare(base, cur);
if (problems.length === 0) {
  console.log(`check-proto-compat: ${current} is compatible with ${baseline}`);
  process.exit(0);
}
for (const p of problems) console.error(`BREAKING: ${p}`);
console.error(`check-proto-compat: ${problems.length} breaking change(s) against ${baseline}`);
process.exit(1);
