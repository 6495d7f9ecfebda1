// Issue 9 (bad input): oversized and out-of-range configuration fields are refused when the file
// is parsed, each with a ConfigError problem that names the field (and its line), instead of
// failing later at launch. Values just inside each bound are accepted.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';

const BASE = 'device_server:\n  url: https://d.example\n';

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'fields.yaml', {}, '/base');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('E_CONFIG');
    return (err as ConfigError).problems;
  }
  throw new Error('configuration was accepted');
}

const reg = (fields: string) => `${BASE}registrations:\n  - id: acme\n${fields}`;
const yamlString = (s: string) => JSON.stringify(s);

describe('oversized or out-of-range configuration fields', () => {
  it.each([
    ['an inline enroll secret over 16 KiB', reg(`    enroll_secret: ${'a'.repeat(16_385)}\n`), 'registrations.0.enroll_secret'],
    [
      'more than 256 registrations',
      `${BASE}registrations:\n${Array.from({ length: 257 }, (_, i) => `  - id: r${i}\n`).join('')}`,
      'registrations',
    ],
    [
      'more than 100 osquery flags',
      reg(`    osquery_flags: [${Array.from({ length: 101 }, (_, i) => `"--f${i}"`).join(', ')}]\n`),
      'registrations.0.osquery_flags',
    ],
    [
      'an osquery flag over 1024 characters',
      reg(`    osquery_flags: ["--verbose=${'x'.repeat(1020)}"]\n`),
      'registrations.0.osquery_flags.0',
    ],
    ['a 1 MiB osquery flag', reg(`    osquery_flags: ["--verbose=${'x'.repeat(1024 * 1024)}"]\n`), 'registrations.0.osquery_flags.0'],
    ['a NUL byte in an osquery flag', reg(`    osquery_flags: [${yamlString('--verbose=a\0b')}]\n`), 'registrations.0.osquery_flags.0'],
    ['a tab in an osquery flag', reg(`    osquery_flags: [${yamlString('--verbose=a\tb')}]\n`), 'registrations.0.osquery_flags.0'],
    ['a memory limit of 10^9 MB', reg('    limits: {memory_mb: 1000000000}\n'), 'registrations.0.limits.memory_mb'],
    ['a cpu limit of 1000 %', reg('    limits: {cpu_percent: 1000}\n'), 'registrations.0.limits.cpu_percent'],
    ['a fractional cpu limit', reg('    limits: {cpu_percent: 12.5}\n'), 'registrations.0.limits.cpu_percent'],
    ['a device timeout of 10^12 ms', `${BASE}  timeout_ms: 1000000000000\n`, 'device_server.timeout_ms'],
    ['a device concurrency of 10^6', `${BASE}  concurrency: 1000000\n`, 'device_server.concurrency'],
    ['an infinite device timeout', `${BASE}  timeout_ms: .inf\n`, 'device_server.timeout_ms'],
    ['a NaN device timeout', `${BASE}  timeout_ms: .nan\n`, 'device_server.timeout_ms'],
    ['a numeric string as concurrency', `${BASE}  concurrency: "4"\n`, 'device_server.concurrency'],
    ['a malformed cert pin', `${BASE}  cert_pins: ["${'a'.repeat(63)}g"]\n`, 'device_server.cert_pins.0'],
    ['an output ring of 10^12 lines', `${BASE}output_ring_lines: 1000000000000\n`, 'output_ring_lines'],
    ['a 1 GiB log batch', `${BASE}log_buffer: {max_bytes_per_batch: 1073741824}\n`, 'log_buffer.max_bytes_per_batch'],
    ['10^9 buffered entries', `${BASE}log_buffer: {max_entries: 1000000000}\n`, 'log_buffer.max_entries'],
    ['a negative publish interval', `${BASE}log_buffer: {publish_interval_seconds: -1}\n`, 'log_buffer.publish_interval_seconds'],
    ['10^6 health failures', `${BASE}health: {failures: 1000000}\n`, 'health.failures'],
    [
      'a forwarding interval of a day',
      `${BASE}distributed_forwarding_interval_seconds: 86400\n`,
      'distributed_forwarding_interval_seconds',
    ],
    ['a tenant role with a traversal id', `${BASE}control:\n  roles: {x: "tenant:../x"}\n`, 'control.roles.x'],
    ['an unknown log level', `${BASE}log_level: LOUD\n`, 'log_level'],
    ['a non-http device URL', 'device_server:\n  url: file:///etc/passwd\n', 'device_server.url'],
    ['an unknown key', `${BASE}secret_backdoor: true\n`, '(top level)'],
  ])('refuses %s', (_label, text, path) => {
    const problems = problemsOf(text);
    expect(
      problems.some((p) => p.startsWith(`${path}`) && /: \S/.test(p)),
      `problems: ${JSON.stringify(problems.map((p) => p.slice(0, 120)))}`,
    ).toBe(true);
    for (const p of problems) expect(p.length).toBeLessThan(2_000); // a huge value is not echoed back in full
  });

  it('lists every problem of a file at once, each with its line', () => {
    const problems = problemsOf(`${BASE}  concurrency: 0\nlog_level: LOUD\nregistrations:\n  - id: Bad\n    limits: {memory_mb: 1}\n`);
    expect(problems.map((p) => p.split(':')[0])).toEqual(
      expect.arrayContaining([
        'device_server.concurrency (line 3)',
        'log_level (line 4)',
        'registrations.0.id (line 6)',
        'registrations.0.limits.memory_mb (line 7)',
      ]),
    );
  });

  it('refuses a 5 MiB value under an unknown key, and 2000 unknown keys, without trouble', () => {
    const big = problemsOf(`${BASE}junk: ${'y'.repeat(5 * 1024 * 1024)}\n`);
    expect(big).toEqual([expect.stringMatching(/^\(top level\) \(line 1\): Unrecognized key: "junk"$/)]);
    // (A mapping of tens of thousands of keys is slow to parse: yaml's duplicate-key check is quadratic.)
    const many = problemsOf(`${BASE}${Array.from({ length: 2_000 }, (_, i) => `junk_${i}: y`).join('\n')}\n`);
    expect(many[0]).toMatch(/^\(top level\)/);
  });

  it('accepts values just inside the bounds', () => {
    const cfg = parseConfig(
      reg(
        `    enroll_secret: ${'a'.repeat(16_384)}\n    osquery_flags: ["--verbose=${'x'.repeat(1024 - '--verbose='.length)}"]\n    limits: {memory_mb: 100000, cpu_percent: 100}\n`,
      ),
      'ok.yaml',
      {},
      '/base',
    );
    expect(cfg.registrations[0]!.enroll_secret!.length).toBe(16_384);
    expect(cfg.registrations[0]!.osquery_flags[0]!.length).toBe(1024);
  });
});
