// Issue 9 (fuzz): configuration parsing. parseConfig either returns a valid configuration or
// throws ConfigError whose problems are non-empty and each name where (a key path, "(top level)"
// or a line); never another exception type. Inputs: config/launcher.example.yaml mutated by line,
// by value and by character, YAML features (anchors and aliases, alias bombs, tags, merge keys,
// directives, several documents, deep nesting), random YAML documents, and environment overrides.
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { LauncherError } from '../../src/errors.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { REGISTRATION_ID_PATTERN, type LauncherConfig } from '../../src/config/schema.js';
import { FuzzRun, fuzzIterations, type Rng } from '../helpers/fuzz.js';

const EXAMPLE = readFileSync(fileURLToPath(new URL('../../config/launcher.example.yaml', import.meta.url)), 'utf8');
const MUTATED = fuzzIterations(800);
const RANDOM = fuzzIterations(800);
const FEATURES = fuzzIterations(150);
const timeoutFor = (n: number) => 60_000 + n * 20;

const TOP_KEYS = [
  'root_directory',
  'osqueryd_path',
  'log_level',
  'device_server',
  'registrations',
  'control',
  'output_ring_lines',
  'log_buffer',
  'health',
  'distributed_forwarding_interval_seconds',
  'store',
  'isolation_namespaces',
  'quarantine',
  'checkups',
  'metrics',
  'update',
];

/** Environment variables a problem may name instead of a YAML path (`NAME="value" (environment): …`). */
const ENV_OVERRIDES = [
  'LAUNCHER_ROOT',
  'LAUNCHER_OSQUERYD_PATH',
  'LAUNCHER_DEVICE_URL',
  'LAUNCHER_LOG_LEVEL',
  'LAUNCHER_CONTROL_LISTEN',
  'LAUNCHER_METRICS_LISTEN',
];

/** A problem names where: `line N: …`, `(top level)…: …`, `<known key>[.path][ (line N)]: …`, an environment override, or a duplicate id. */
function namesWhere(problem: string): boolean {
  if (/^line \d+: \S/.test(problem)) return true;
  if (/^\(top level\)( \(line \d+\))?: \S/.test(problem)) return true;
  if (/^registrations: duplicate id ".*"$/s.test(problem)) return true;
  if (problem === 'the top level must be a mapping') return true;
  const env = /^([A-Z_]+)=.* \(environment\): \S/s.exec(problem);
  if (env) return ENV_OVERRIDES.includes(env[1]!);
  const m = /^([^\s.:(]+)[^\n]*?( \(line \d+\))?: \S/s.exec(problem);
  return m !== null && TOP_KEYS.includes(m[1]!);
}

type Outcome = 'valid' | 'config-error';

function parseChecked(text: string, env: Record<string, string> = {}): Outcome {
  let cfg: LauncherConfig;
  try {
    cfg = parseConfig(text, 'fuzz.yaml', env, '/base');
  } catch (err) {
    if (!(err instanceof ConfigError) || !(err instanceof LauncherError) || err.code !== 'E_CONFIG') {
      throw new Error(
        `parseConfig threw ${(err as Error)?.constructor?.name ?? typeof err} (${(err as { code?: string }).code ?? 'no code'}) instead of ConfigError: ${(err as Error)?.message}`,
        { cause: err },
      );
    }
    if (err.problems.length === 0) throw new Error('ConfigError without problems');
    for (const p of err.problems) {
      if (!namesWhere(p)) throw new Error(`ConfigError problem does not name a path or line: ${JSON.stringify(p)}`);
    }
    if (!err.message.includes('fuzz.yaml')) throw new Error(`ConfigError message does not name the source: ${err.message}`);
    return 'config-error';
  }
  // A returned configuration honours the schema's promises.
  expect(typeof cfg.device_server.url).toBe('string');
  expect(isAbsolute(cfg.root_directory)).toBe(true);
  const ids = cfg.registrations.map((r) => r.id);
  for (const id of ids) expect(REGISTRATION_ID_PATTERN.test(id), `registration id ${JSON.stringify(id)}`).toBe(true);
  expect(new Set(ids).size).toBe(ids.length);
  for (const r of cfg.registrations) {
    if (r.enroll_secret_path !== undefined) expect(isAbsolute(r.enroll_secret_path)).toBe(true);
    expect(r.enroll_secret !== undefined && r.enroll_secret_path !== undefined).toBe(false);
  }
  return 'valid';
}

function randomScalarText(rng: Rng): string {
  return rng.pick([
    '0',
    '-1',
    '1e309',
    '.nan',
    '.inf',
    '0x1F',
    '0o17',
    'true',
    'yes',
    'null',
    '~',
    '""',
    "''",
    '"\\u0000"',
    '"\\ud800"',
    'a'.repeat(rng.pick([1, 2, 3, 20_000])),
    '[]',
    '{}',
    '[1, [2, [3]]]',
    '{a: 1}',
    '|\n  block\n  text',
    '>-\n  folded',
    '"unterminated',
    '&anc 5',
    '*anc',
    '*nowhere',
    '!!binary aGVsbG8=',
    '!!int "12"',
    '!!float x',
    '!custom value',
    '!!set {a, b}',
    '!!omap [a: 1]',
    '2024-01-01',
    '12:30:00',
    rng.string(rng.range(0, 20)).replace(/\n/g, ' '),
    `"${rng.string(rng.range(0, 20)).replace(/["\\]/g, '')}"`,
  ]);
}

function mutateExample(rng: Rng): { text: string; mutation: string } {
  const lines = EXAMPLE.split('\n');
  const mutation = rng.weighted<string>([
    [3, 'value'],
    [2, 'delete-line'],
    [1, 'duplicate-line'],
    [1, 'swap-lines'],
    [2, 'indent'],
    [2, 'insert-line'],
    [2, 'char'],
    [1, 'truncate'],
  ]);
  const li = () => rng.int(lines.length);
  for (let k = rng.range(1, 3); k > 0; k--) {
    switch (mutation) {
      case 'value': {
        const i = li();
        const m = /^(\s*(?:- )?[A-Za-z_][\w-]*:)\s*(.*)$/.exec(lines[i]!);
        if (m) lines[i] = `${m[1]} ${randomScalarText(rng)}`;
        break;
      }
      case 'delete-line':
        lines.splice(li(), 1);
        break;
      case 'duplicate-line': {
        const i = li();
        lines.splice(i, 0, lines[i]!);
        break;
      }
      case 'swap-lines': {
        const i = li();
        const j = li();
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        break;
      }
      case 'indent': {
        const i = li();
        lines[i] = rng.pick([' ', '  ', '\t', '    ', '']) + lines[i]!.replace(/^\s+/, rng.bool() ? '' : ' ');
        break;
      }
      case 'insert-line':
        lines.splice(
          li(),
          0,
          rng.pick([
            '---',
            '...',
            '%YAML 1.1',
            '? [a, b]',
            ': x',
            '- x',
            '<<: {a: 1}',
            'x: &a [1, 2]',
            'y: *a',
            '  - id: "../evil"',
            'registrations: [{id: X}]',
            '\t',
            '#',
            'a:b',
            '"k": v',
            '{',
          ]),
        );
        break;
      case 'char': {
        const i = li();
        const l = lines[i]!;
        const at = rng.int(l.length + 1);
        lines[i] = rng.bool()
          ? l.slice(0, at) +
            rng.pick([':', '-', '"', "'", '{', '[', '#', '&', '*', '!', '|', '>', '%', '@', '`', '\u0000', '\ufeff']) +
            l.slice(at)
          : l.slice(0, at) + l.slice(at + 1);
        break;
      }
      case 'truncate':
        return { text: EXAMPLE.slice(0, rng.int(EXAMPLE.length)), mutation };
    }
  }
  return { text: lines.join('\n'), mutation };
}

function randomValue(rng: Rng, depth = 0): unknown {
  if (depth > 4 || rng.bool(0.4)) {
    return rng.pick<unknown>([
      0,
      -1,
      1.5,
      1e300,
      'x',
      '',
      'https://d.example',
      true,
      false,
      null,
      rng.string(rng.range(0, 10)),
      'kolide',
      '../x',
    ]);
  }
  if (rng.bool(0.4)) return Array.from({ length: rng.range(0, 3) }, () => randomValue(rng, depth + 1));
  const o: Record<string, unknown> = {};
  const keys = [
    ...TOP_KEYS,
    'url',
    'id',
    'enroll_secret',
    'enroll_secret_path',
    'limits',
    'memory_mb',
    'roles',
    'enabled',
    'listen',
    'cert_pins',
    'osquery_flags',
    '__proto__',
    'constructor',
  ];
  for (let n = rng.range(0, 5); n > 0; n--) o[rng.bool(0.8) ? rng.pick(keys) : rng.string(rng.range(0, 6))] = randomValue(rng, depth + 1);
  return o;
}

function featureDocument(rng: Rng): { text: string; feature: string } {
  const base = 'device_server:\n  url: https://d.example\n';
  const n = rng.pick([10, 200, 2_000, 20_000]);
  const feature = rng.pick([
    'alias-bomb',
    'unknown-alias',
    'alias-cycle',
    'merge',
    'deep-flow',
    'deep-block',
    'tags',
    'multi-doc',
    'directive',
    'anchor-reuse',
    'bom',
    'big-list',
  ]);
  switch (feature) {
    case 'alias-bomb': {
      let t = `${base}a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n`;
      for (let i = 1; i < 9; i++)
        t += `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]\n`;
      return { text: t, feature };
    }
    case 'unknown-alias':
      return { text: `${base}registrations: [*${rng.pick(['nope', 'a', 'x y'])}]\n`, feature };
    case 'alias-cycle':
      return { text: `${base}control: &c\n  roles: *c\n`, feature };
    case 'merge':
      return { text: `defaults: &d {url: "https://d.example"}\ndevice_server:\n  <<: *d\n`, feature };
    case 'deep-flow':
      return { text: `${base}registrations: ${'['.repeat(n)}${']'.repeat(n)}\n`, feature };
    case 'deep-block': {
      let t = `${base}control:\n`;
      for (let i = 0; i < Math.min(n, 3_000); i++) t += `${' '.repeat(2 * (i + 1))}k${i}:\n`;
      return { text: t, feature };
    }
    case 'tags':
      return {
        text: `${base}log_level: ${rng.pick(['!!binary aW5mbw==', '!!str info', '!!int 5', '!local info', '!!timestamp 2001-12-14'])}\n`,
        feature,
      };
    case 'multi-doc':
      return { text: `${base}---\n${base}`, feature };
    case 'directive':
      return { text: `${rng.pick(['%YAML 1.1', '%YAML 9.9', '%TAG ! tag:example.com,2000:', '%FOO bar'])}\n---\n${base}`, feature };
    case 'anchor-reuse':
      return { text: `${base}registrations:\n  - &r {id: acme}\n  - *r\n`, feature };
    case 'bom':
      return { text: `\ufeff${base}`, feature };
    default:
      return {
        text: `${base}registrations:\n${Array.from({ length: Math.min(n, 2_000) }, (_, i) => `  - id: r${i}`).join('\n')}\n`,
        feature,
      };
  }
}

describe('fuzz: parseConfig', () => {
  it('parses the example configuration', () => {
    expect(parseChecked(EXAMPLE)).toBe('valid');
  });

  it(
    `survives ${MUTATED} mutations of config/launcher.example.yaml`,
    () => {
      const run = new FuzzRun('config.parse.mutated-example');
      for (let i = 0; i < MUTATED; i++) {
        const { text, mutation } = mutateExample(run.rng);
        run.count(`${mutation}:${run.check({ mutation, text }, () => parseChecked(text))}`);
      }
      const stats = run.finish();
      expect(stats.failures).toBe(0);
    },
    timeoutFor(MUTATED),
  );

  it(
    `survives ${RANDOM} random YAML documents and environment overrides`,
    () => {
      const run = new FuzzRun('config.parse.random');
      for (let i = 0; i < RANDOM; i++) {
        const text = run.rng.bool(0.8) ? stringify(randomValue(run.rng)) : run.rng.string(run.rng.range(0, 200));
        const env: Record<string, string> = {};
        if (run.rng.bool(0.3)) {
          env[
            run.rng.pick([
              'LAUNCHER_ROOT',
              'LAUNCHER_OSQUERYD_PATH',
              'LAUNCHER_DEVICE_URL',
              'LAUNCHER_LOG_LEVEL',
              'LAUNCHER_CONTROL_LISTEN',
              'LAUNCHER_METRICS_LISTEN',
            ])
          ] = run.rng.pick(['https://d.example', 'ftp://x', 'relative/dir', 'LOUD', 'debug', '\u0000', 'x'.repeat(5000)]);
        }
        run.count(run.check({ text, env }, () => parseChecked(text, env)));
      }
      expect(run.finish().failures).toBe(0);
    },
    timeoutFor(RANDOM),
  );

  it(
    `survives ${FEATURES} documents using YAML features (aliases, alias bombs, tags, merge keys, deep nesting)`,
    () => {
      const run = new FuzzRun('config.parse.yaml-features');
      for (let i = 0; i < FEATURES; i++) {
        const { text, feature } = featureDocument(run.rng);
        run.count(`${feature}:${run.check({ feature, text }, () => parseChecked(text))}`);
      }
      expect(run.finish().failures).toBe(0);
    },
    timeoutFor(FEATURES * 5),
  );

  it('refuses an alias bomb and an undefined alias with a ConfigError (they used to escape as ReferenceError)', () => {
    const bomb = featureDocument({
      pick: (xs: readonly unknown[]) => (xs.includes('alias-bomb') ? 'alias-bomb' : xs[0]),
    } as unknown as Rng).text;
    expect(() => parseConfig(bomb, 'bomb.yaml', {})).toThrow(ConfigError);
    expect(() => parseConfig('device_server: {url: "https://d.example"}\nregistrations: [*nope]\n', 'alias.yaml', {})).toThrow(ConfigError);
    try {
      parseConfig('device_server: {url: "https://d.example"}\nregistrations: [*nope]\n', 'alias.yaml', {});
    } catch (err) {
      expect((err as ConfigError).problems.every(namesWhere)).toBe(true);
      expect((err as ConfigError).message).toContain('nope');
    }
  });
});
