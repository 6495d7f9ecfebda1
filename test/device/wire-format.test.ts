/**
 * Raw request bytes of every method against docs/protocol/device.md#request and docs/protocol/device.md#methods, captured by
 * a real HTTP server on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceClient, ENROLLMENT_DETAIL_KEYS, type EnrollmentDetails } from '../../src/device/index.js';
import { rpcResult, startCaptureServer, type CaptureServer } from './support.js';

const DETAILS: EnrollmentDetails = {
  os_version: '14.5',
  os_build_id: '23F79',
  os_platform: 'darwin',
  hostname: 'alice-mbp',
  hardware_vendor: 'Apple Inc.',
  hardware_model: 'MacBookPro18,3',
  hardware_serial: 'C02ABC123XYZ',
  osquery_version: '5.12.1',
  launcher_hardware_key: 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...',
  launcher_hardware_key_source: 'secure_enclave',
  launcher_local_key: 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...',
  launcher_version: '1.12.0',
  os_name: 'macOS',
  os_platform_like: 'darwin',
  goos: 'darwin',
  goarch: 'arm64',
  hardware_uuid: '8C1D2E3F-0000-1111-2222-333344445555',
};

let server: CaptureServer | undefined;
let client: DeviceClient | undefined;

afterEach(async () => {
  client?.close();
  await server?.close();
  server = undefined;
  client = undefined;
});

async function setup(result: unknown): Promise<{ server: CaptureServer; client: DeviceClient }> {
  server = await startCaptureServer(rpcResult(result));
  client = new DeviceClient({ serverUrl: server.url, insecureTransport: true, maxAttempts: 1 });
  return { server, client };
}

describe('device client request wire format', () => {
  it('RequestEnrollment matches the reference example byte for byte', async () => {
    const { server, client } = await setup({ node_key: 'acme::eyJ', node_invalid: false });
    const res = await client.requestEnrollment({
      enrollSecret: 'eyJhbGciOiJIUzI1NiJ9.eyJvcmdhbml6YXRpb24iOiJhY21lIn0.sig',
      hostIdentifier: '5b0f3c1e-2a47-4d0b-9f3e-7c1a2b3c4d5e',
      details: DETAILS,
    });
    expect(res.nodeKey).toBe('acme::eyJ');
    const expected =
      '{"jsonrpc":"","method":"RequestEnrollment","params":{"enroll_secret":"eyJhbGciOiJIUzI1NiJ9.eyJvcmdhbml6YXRpb24iOiJhY21lIn0.sig","host_identifier":"5b0f3c1e-2a47-4d0b-9f3e-7c1a2b3c4d5e","EnrollmentDetails":{"os_version":"14.5","os_build_id":"23F79","os_platform":"darwin","hostname":"alice-mbp","hardware_vendor":"Apple Inc.","hardware_model":"MacBookPro18,3","hardware_serial":"C02ABC123XYZ","osquery_version":"5.12.1","launcher_hardware_key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...","launcher_hardware_key_source":"secure_enclave","launcher_local_key":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...","launcher_version":"1.12.0","os_name":"macOS","os_platform_like":"darwin","goos":"darwin","goarch":"arm64","hardware_uuid":"8C1D2E3F-0000-1111-2222-333344445555"}},"id":0}\n';
    expect(server.requests[0]!.body.toString()).toBe(expected);
  });

  it('EnrollmentDetails always has all 17 keys, in order, as strings', async () => {
    const { server, client } = await setup({ node_key: 'k' });
    await client.requestEnrollment({ enrollSecret: 's', hostIdentifier: 'h', details: { hostname: 'box', goos: 'linux' } });
    const params = JSON.parse(server.requests[0]!.body.toString()).params;
    expect(Object.keys(params)).toEqual(['enroll_secret', 'host_identifier', 'EnrollmentDetails']);
    expect(Object.keys(params.EnrollmentDetails)).toEqual([...ENROLLMENT_DETAIL_KEYS]);
    expect(Object.values(params.EnrollmentDetails).every((v) => typeof v === 'string')).toBe(true);
    expect(params.EnrollmentDetails.hostname).toBe('box');
    expect(params.EnrollmentDetails.os_version).toBe('');
  });

  it('RequestConfig, RequestQueries, PublishLogs, PublishResults, CheckHealth bodies', async () => {
    const { server, client } = await setup({ config: '{}', message: 'ok', status: 1 });
    await client.requestConfig('acme::eyJ...');
    await client.publishLogs('acme::eyJ...', 4, ['{"s":0,"m":"hi"}']);
    await client.requestQueries('acme::eyJ...');
    await client.publishResults('acme::eyJ...', [
      {
        query_name: 'kolide_adhoc_9f2',
        status: 0,
        rows: [{ version: '5.12.1' }],
        stats: { wall_time_ms: 4, user_time: 1, system_time: 0, memory: 0 },
        message: '',
      },
    ]);
    await client.publishResults('acme::eyJ...', []);
    await client.checkHealth();
    const bodies = server.requests.map((r) => r.body.toString());
    expect(bodies).toEqual([
      '{"jsonrpc":"","method":"RequestConfig","params":{"node_key":"acme::eyJ..."},"id":0}\n',
      '{"jsonrpc":"","method":"PublishLogs","params":{"node_key":"acme::eyJ...","LogType":4,"Logs":["{\\"s\\":0,\\"m\\":\\"hi\\"}"]},"id":0}\n',
      '{"jsonrpc":"","method":"RequestQueries","params":{"node_key":"acme::eyJ..."},"id":0}\n',
      '{"jsonrpc":"","method":"PublishResults","params":{"node_key":"acme::eyJ...","Results":[{"query_name":"kolide_adhoc_9f2","status":0,"rows":[{"version":"5.12.1"}],"stats":{"wall_time_ms":4,"user_time":1,"system_time":0,"memory":0},"message":""}]},"id":0}\n',
      '{"jsonrpc":"","method":"PublishResults","params":{"node_key":"acme::eyJ...","Results":null},"id":1}\n',
      '{"jsonrpc":"","method":"CheckHealth","params":{},"id":0}\n',
    ]);
  });

  it('ids count per method from 0', async () => {
    const { server, client } = await setup({ config: '{}', message: 'ok' });
    await client.requestConfig('k');
    await client.requestConfig('k');
    await client.publishLogs('k', 0, ['a']);
    await client.requestConfig('k');
    await client.publishLogs('k', 0, ['b']);
    const ids = server.requests.map((r) => {
      const b = JSON.parse(r.body.toString());
      return `${b.method}:${b.id}`;
    });
    expect(ids).toEqual(['RequestConfig:0', 'RequestConfig:1', 'PublishLogs:0', 'RequestConfig:2', 'PublishLogs:1']);
  });

  it('POST / with Content-Length, JSON content type, Connection: close, one connection per call', async () => {
    const { server, client } = await setup({ config: '{}' });
    await client.requestConfig('k');
    await client.requestConfig('k');
    await client.requestConfig('k');
    for (const r of server.requests) {
      expect(r.method).toBe('POST');
      expect(r.url).toBe('/');
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(r.headers['content-length']).toBe(String(r.body.length));
      expect(r.headers['transfer-encoding']).toBeUndefined();
      expect(r.headers.connection).toBe('close');
      expect(r.headers['user-agent']).toBe('Go-http-client/1.1');
      expect(r.headers.authorization).toBeUndefined();
    }
    expect(new Set(server.requests.map((r) => r.connection)).size).toBe(3);
  });

  it('large PublishLogs bodies are still sent with Content-Length, never chunked', async () => {
    const { server, client } = await setup({ message: 'ok' });
    const logs = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ i, pad: 'y'.repeat(1000) }));
    await client.publishLogs('k', 0, logs);
    const r = server.requests[0]!;
    expect(r.headers['transfer-encoding']).toBeUndefined();
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
    expect(r.body.length).toBeGreaterThan(2_000_000);
    expect(JSON.parse(r.body.toString()).params.Logs).toEqual(logs);
  });

  it('counts calls, requests and bytes', async () => {
    const { server, client } = await setup({ config: '{}' });
    await client.requestConfig('k');
    const s = client.stats();
    expect(s.calls).toBe(1);
    expect(s.requests).toBe(1);
    expect(s.failures).toBe(0);
    expect(s.bytesSent).toBe(server.requests[0]!.body.length);
    expect(s.bytesReceived).toBeGreaterThan(0);
    expect(s.byMethod.RequestConfig.calls).toBe(1);
  });
});
