/** Response decoding rules (docs/protocol/device.md#decoding): Go-like matching, strict types, err, error, result. */
import { describe, expect, it } from 'vitest';
import { decodeResponse, DeviceError } from '../../src/device/index.js';

const body = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const ok = (result: unknown) => body({ jsonrpc: '2.0', id: 99, result });

function failure(fn: () => unknown): DeviceError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DeviceError);
    return err as DeviceError;
  }
  throw new Error('expected a DeviceError');
}

describe('decodeResponse', () => {
  it('decodes the reference examples', () => {
    const e = decodeResponse(
      'RequestEnrollment',
      ok({
        node_key: 'acme::eyJ...',
        node_invalid: false,
        wrong_region: false,
        disable_device: false,
        agent_ingester_auth_token: 'tok_abc',
        agent_ingester_hpke_public_key: 'k1:BASE64PUB',
        agent_ingester_hpke_psk: 'p1:BASE64PSK',
      }),
    );
    expect(e).toMatchObject({ nodeKey: 'acme::eyJ...', nodeInvalid: false, agentIngesterAuthToken: 'tok_abc', deploymentUrls: undefined });
    const q = decodeResponse(
      'RequestQueries',
      ok({ Queries: { queries: { kolide_adhoc_9f2: 'select version from osquery_info' }, accelerate: 300 }, node_invalid: false }),
    );
    expect(q.queries).toEqual({ queries: { kolide_adhoc_9f2: 'select version from osquery_info' }, discovery: undefined, accelerate: 300 });
    const c = decodeResponse('RequestConfig', ok({ config: '{"options":{}}', node_invalid: false, disable_device: false }));
    expect(c.config).toBe('{"options":{}}');
    expect(decodeResponse('CheckHealth', ok({ status: 1 }))).toEqual({ status: 1, errorCode: '' });
  });

  it('ignores jsonrpc and id, and unknown keys', () => {
    const r = decodeResponse(
      'PublishLogs',
      body({ jsonrpc: 'whatever', id: 'nope', extra: 1, result: { message: 'ok', surprise: { a: 1 } } }),
    );
    expect(r).toEqual({ message: 'ok', nodeInvalid: false, disableDevice: false, errorCode: '' });
  });

  it('matches keys case-insensitively, preferring an exact match', () => {
    const q = decodeResponse('RequestQueries', ok({ queries: { QUERIES: { a: 'select 1' } }, NODE_INVALID: true }));
    expect(q.queries.queries).toEqual({ a: 'select 1' });
    expect(q.nodeInvalid).toBe(true);
    const both = decodeResponse('RequestConfig', ok({ CONFIG: 'folded', config: 'exact' }));
    expect(both.config).toBe('exact');
    const envelope = decodeResponse('RequestConfig', body({ RESULT: { Config: 'x' } }));
    expect(envelope.config).toBe('x');
  });

  it('missing keys and nulls are zero values', () => {
    expect(decodeResponse('RequestConfig', ok({}))).toEqual({ config: '', nodeInvalid: false, disableDevice: false, errorCode: '' });
    expect(decodeResponse('RequestConfig', ok({ config: null, node_invalid: null }))).toMatchObject({ config: '', nodeInvalid: false });
    expect(decodeResponse('RequestQueries', ok({ Queries: null })).queries).toEqual({ queries: {}, discovery: undefined, accelerate: 0 });
  });

  it('decodes deployment_urls', () => {
    const e = decodeResponse(
      'RequestEnrollment',
      ok({
        node_key: '',
        wrong_region: true,
        deployment_urls: { enrollment_url: 'a', control_server_url: 'b', osquery_publisher_url: 'c' },
      }),
    );
    expect(e.wrongRegion).toBe(true);
    expect(e.deploymentUrls).toEqual({ enrollmentUrl: 'a', controlServerUrl: 'b', osqueryPublisherUrl: 'c' });
  });

  it.each([['"boom"'], ['{"x":1}'], ['true'], ['false'], ['0'], ['[]']])('rejects a non-null err (%s)', (errJson) => {
    const e = failure(() => decodeResponse('PublishLogs', body(`{"result":{"message":"ok","err":${errJson}}}`)));
    expect(e.code).toBe('E_DEVICE_RESPONSE');
    expect(e.message).toContain('err');
    expect(e.retryable).toBe(false);
  });

  it('accepts err: null and a folded Err: null', () => {
    expect(decodeResponse('PublishLogs', ok({ message: 'ok', err: null })).message).toBe('ok');
    expect(decodeResponse('PublishLogs', ok({ message: 'ok', Err: null })).message).toBe('ok');
    expect(failure(() => decodeResponse('PublishLogs', ok({ ERR: 'x' }))).code).toBe('E_DEVICE_RESPONSE');
  });

  it.each([
    ['RequestConfig', { node_invalid: 'true' }],
    ['RequestConfig', { config: { options: {} } }],
    ['RequestEnrollment', { node_key: 42 }],
    ['RequestQueries', { Queries: { queries: { a: 1 } } }],
    ['RequestQueries', { Queries: { accelerate: '300' } }],
    ['RequestQueries', { Queries: { accelerate: 1.5 } }],
    ['RequestQueries', { Queries: [] }],
    ['CheckHealth', { status: 2 ** 40 }],
    ['PublishResults', { disable_device: 1 }],
    ['RequestEnrollment', { deployment_urls: 'x' }],
  ] as const)('rejects wrong types: %s %j', (method, result) => {
    const e = failure(() => decodeResponse(method, ok(result)));
    expect(e.code).toBe('E_DEVICE_RESPONSE');
    expect(e.message).toContain('wrong types');
  });

  it('turns a JSON-RPC error object into E_DEVICE_REJECTED with its message or the standard text', () => {
    const e = failure(() =>
      decodeResponse('RequestConfig', body({ jsonrpc: '2.0', id: 1, error: { code: -32000, message: 'no such node' } })),
    );
    expect(e.code).toBe('E_DEVICE_REJECTED');
    expect(e.rpcCode).toBe(-32000);
    expect(e.message).toContain('no such node');
    const std = failure(() => decodeResponse('RequestConfig', body({ error: { code: -32601, message: '' } })));
    expect(std.message).toContain('Method not found');
    const bad = failure(() => decodeResponse('RequestConfig', body({ error: 'oops' })));
    expect(bad.code).toBe('E_DEVICE_RESPONSE');
  });

  it('an error object wins over a result; error: null is ignored', () => {
    expect(failure(() => decodeResponse('RequestConfig', body({ result: { config: 'x' }, error: { code: 1, message: 'm' } }))).code).toBe(
      'E_DEVICE_REJECTED',
    );
    expect(decodeResponse('RequestConfig', body({ result: { config: 'x' }, error: null })).config).toBe('x');
  });

  it.each([
    ['missing result', '{"jsonrpc":"2.0","id":0}'],
    ['null result', '{"result":null}'],
    ['array result', '{"result":[1]}'],
    ['string result', '{"result":"ok"}'],
    ['non-JSON', '<html><body>502 Bad Gateway</body></html>'],
    ['empty body', ''],
    ['top-level array', '[{"result":{}}]'],
    ['top-level null', 'null'],
    ['truncated JSON', '{"result":{"config":"ab'],
  ])('rejects %s', (_what, text) => {
    const e = failure(() => decodeResponse('RequestConfig', body(text)));
    expect(e.code).toBe('E_DEVICE_RESPONSE');
    expect(e.method).toBe('RequestConfig');
  });

  it('does not let __proto__ keys pollute anything', () => {
    const r = decodeResponse(
      'RequestQueries',
      body('{"result":{"Queries":{"queries":{"__proto__":"select 1","a":"select 2"}},"__proto__":{"node_invalid":true}}}'),
    );
    expect(r.nodeInvalid).toBe(false);
    expect(r.queries.queries.a).toBe('select 2');
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });
});
