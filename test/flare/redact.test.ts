// The flare's scrubber and config redaction (issue 18 review): a bare PEM BEGIN line printed by a tenant's osqueryd
// must not erase the rest of a file; a short node key from a backend must not erase ordinary words; URLs lose their
// credentials.
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { REDACTED, redactConfig, Scrubber } from '../../src/flare/redact.js';

describe('flare scrubber', () => {
  it('redacts a whole PEM private key, and only the key', () => {
    const s = new Scrubber();
    const key = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END PRIVATE KEY-----';
    expect(s.scrub(`before\n${key}\nafter`)).toBe(`before\n${REDACTED} private key\nafter`);
  });

  it('a BEGIN line without its END erases the base64 after it, not the rest of the file', () => {
    const s = new Scrubber();
    const log = [
      'I1202 line one',
      'E1202 x.cpp:1] -----BEGIN PRIVATE KEY-----',
      'I1202 line three: acme healthy',
      'I1202 line four: globex healthy',
    ].join('\n');
    const out = s.scrub(log);
    expect(out).toContain('line three: acme healthy');
    expect(out).toContain('line four: globex healthy');
    expect(out).not.toContain('BEGIN PRIVATE KEY');
  });

  it('a short node key is not searched for', () => {
    const s = new Scrubber();
    s.add('acme', 16);
    s.add('a-long-node-key-0123456789', 16);
    expect(s.scrub('acme is running with a-long-node-key-0123456789')).toBe(`acme is running with ${REDACTED}`);
  });

  it('URLs in the config lose user, password and query', () => {
    const cfg = configSchema.parse({
      root_directory: '/tmp/r',
      device_server: { url: 'https://user:pw@device.example.com/path?token=abc' },
      registrations: [{ id: 'kolide', enroll_secret: 'shh' }],
    });
    const red = redactConfig(cfg) as { device_server: { url: string }; registrations: Array<{ enroll_secret: string }> };
    expect(red.device_server.url).toBe(`https://device.example.com/path ${REDACTED}`);
    expect(red.registrations[0]!.enroll_secret).toBe(REDACTED);
    expect(JSON.stringify(red)).not.toMatch(/pw|token=abc|shh/);
  });
});
