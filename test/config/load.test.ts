// Issue 8: configuration is validated with a schema; bad values name their path and line.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseConfig, ConfigError } from '../../src/config/load.js';

const example = readFileSync(new URL('../../config/launcher.example.yaml', import.meta.url), 'utf8');

describe('config', () => {
  it('accepts the commented example and fills defaults', () => {
    const cfg = parseConfig(example, 'example', {});
    expect(cfg.registrations[0]!.id).toBe('kolide');
    expect(cfg.registrations[0]!.limits).toEqual({ memory_mb: 600, cpu_percent: 50 });
    expect(cfg.control.roles['CN=tenant-acme']).toBe('tenant:acme');
    expect(cfg.health.failures).toBe(5);
  });

  it('applies environment overrides', () => {
    const cfg = parseConfig(example, 'example', { LAUNCHER_ROOT: '/tmp/lr', LAUNCHER_DEVICE_URL: 'http://127.0.0.1:9/' }, '/');
    expect(cfg.root_directory).toBe('/tmp/lr');
    expect(cfg.device_server.url).toBe('http://127.0.0.1:9/');
  });

  it('reports every invalid value with its path, line and reason', () => {
    const bad = example
      .replace('id: kolide ', 'id: ../etc ')
      .replace('memory_mb: 600', 'memory_mb: -5')
      .replace('url: https://k2device.example.com', 'url: ftp://x');
    let err: unknown;
    try {
      parseConfig(bad, 'bad.yaml', {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toMatch(/registrations\.0\.id \(line \d+\): must match/);
    expect(problems).toMatch(/registrations\.0\.limits\.memory_mb \(line \d+\)/);
    expect(problems).toMatch(/device_server\.url \(line \d+\): must be an http\(s\) URL/);
  });

  it('rejects unknown keys, duplicate ids, both secret forms, and broken YAML', () => {
    expect(() => parseConfig('device_server: {url: "https://x"}\nbogus: 1\n', 'c', {})).toThrow(/Unrecognized key.*bogus|bogus/);
    expect(() => parseConfig('device_server: {url: "https://x"}\nregistrations: [{id: a}, {id: a}]\n', 'c', {})).toThrow(
      /duplicate id "a"/,
    );
    expect(() =>
      parseConfig('device_server: {url: "https://x"}\nregistrations: [{id: a, enroll_secret: s, enroll_secret_path: /p}]\n', 'c', {}),
    ).toThrow(/not both/);
    expect(() => parseConfig('device_server: [\n', 'c', {})).toThrow(/line \d+/);
    expect(() => parseConfig('registrations: []\n', 'c', {})).toThrow(/device_server/);
  });
});
