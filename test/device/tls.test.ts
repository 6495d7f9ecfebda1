/**
 * Real TLS on 127.0.0.1 with certificates made by openssl in the test:
 * custom root PEM, SPKI pins, insecure, TLS 1.2 minimum.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceClient, DeviceError, type DeviceClientOptions } from '../../src/device/index.js';
import { shortTempDir } from '../helpers/tmp.js';
import { makeTlsFixture, rpcResult, startCaptureServer, type CaptureServer, type TlsFixture } from './support.js';

let tmp: { dir: string; cleanup: () => void };
let fx: TlsFixture;
let server: CaptureServer;

beforeAll(async () => {
  tmp = shortTempDir('dtls');
  fx = makeTlsFixture(tmp.dir);
  server = await startCaptureServer(rpcResult({ status: 1 }), { cert: fx.serverCert, key: fx.serverKey });
});

afterAll(async () => {
  await server?.close();
  tmp?.cleanup();
});

function client(options: Partial<DeviceClientOptions> = {}, url = server.url): DeviceClient {
  return new DeviceClient({ serverUrl: url, maxAttempts: 2, backoff: { baseMs: 1, maxMs: 2 }, ...options });
}

async function handshakeFailure(c: DeviceClient): Promise<DeviceError> {
  try {
    await c.checkHealth();
  } catch (err) {
    expect(err).toBeInstanceOf(DeviceError);
    return err as DeviceError;
  } finally {
    c.close();
  }
  throw new Error('expected the handshake to fail');
}

describe('device client TLS', () => {
  it('trusts a server signed by the custom root PEM', async () => {
    const c = client({ rootPemPath: fx.caPath });
    expect(await c.checkHealth()).toEqual({ status: 1, errorCode: '' });
    c.close();
  });

  it('fails without the root (system roots only), and is not retried', async () => {
    const before = server.requests.length;
    const e = await handshakeFailure(client());
    expect(e.code).toBe('E_TLS');
    expect(e.attempts).toBe(1);
    expect(server.requests.length).toBe(before);
  });

  it('the root PEM replaces the system roots: another CA fails', async () => {
    const e = await handshakeFailure(client({ rootPemPath: fx.otherCaPath }));
    expect(e.code).toBe('E_TLS');
  });

  it('a root PEM file with no certificates is a clear error at creation', () => {
    expect(() => client({ rootPemPath: fx.emptyPemPath })).toThrow(/contains no certificates/);
    expect(() => client({ rootPemPath: `${tmp.dir}/missing.pem` })).toThrow(/cannot read root PEM/);
  });

  it('accepts a pin of the leaf or of the CA in the verified chain', async () => {
    for (const pin of [fx.serverPin, fx.caPin, fx.serverPin.toUpperCase()]) {
      const c = client({ rootPemPath: fx.caPath, certPins: [fx.otherPin, pin] });
      expect((await c.checkHealth()).status).toBe(1);
      c.close();
    }
  });

  it('fails the handshake on a pin mismatch, before any request is sent', async () => {
    const before = server.requests.length;
    const e = await handshakeFailure(client({ rootPemPath: fx.caPath, certPins: [fx.otherPin] }));
    expect(e.code).toBe('E_TLS');
    expect(e.message).toMatch(/pin mismatch/);
    expect(server.requests.length).toBe(before);
  });

  it('rejects malformed pins and pins with insecure', () => {
    expect(() => client({ certPins: ['abc'] })).toThrow(/not a hex SHA-256/);
    expect(() => client({ insecure: true, certPins: [fx.serverPin] })).toThrow(/insecure/);
  });

  it('insecure skips verification only when asked', async () => {
    const c = client({ insecure: true });
    expect((await c.checkHealth()).status).toBe(1);
    c.close();
  });

  it('checks the hostname against the certificate', async () => {
    const other = await startCaptureServer(rpcResult({ status: 1 }), { cert: fx.wrongNameCert, key: fx.wrongNameKey });
    try {
      const e = await handshakeFailure(client({ rootPemPath: fx.caPath }, other.url));
      expect(e.code).toBe('E_TLS');
      expect(e.message).toMatch(/altnames|Hostname/i);
    } finally {
      await other.close();
    }
  });

  it('refuses a server limited to TLS 1.1', async () => {
    const old = await startCaptureServer(rpcResult({ status: 1 }), {
      cert: fx.serverCert,
      key: fx.serverKey,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
    });
    try {
      const e = await handshakeFailure(client({ rootPemPath: fx.caPath }, old.url));
      expect(e.code).toBe('E_TLS');
      expect(old.requests).toHaveLength(0);
    } finally {
      await old.close();
    }
  });
});
