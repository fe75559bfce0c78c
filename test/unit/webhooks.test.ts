// The pure parts of reporter webhooks: which callbacks are accepted at intake, the signature
// a receiver verifies, and the public updates derived from an incident's timeline.

import { describe, expect, it } from 'vitest';
import {
  checkCallback,
  isLocalHostName,
  isPrivateAddress,
  publicUpdates,
  signWebhook,
  updateBody,
  verifyWebhook,
} from '../../src/engine/webhooks.ts';
import { ApiError } from '../../src/server/errors.ts';
import type { StoredEvent } from '../../src/store/store.ts';

const strict = { allowHttp: false, allowPrivate: false };

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    if (err instanceof ApiError) return err.code;
    throw err;
  }
  return undefined;
}

describe('callback at intake', () => {
  it('accepts an HTTPS URL to a public host, normalised', () => {
    expect(checkCallback('https://hooks.example.com/r/42?x=1', strict)).toBe(
      'https://hooks.example.com/r/42?x=1',
    );
    expect(checkCallback('  HTTPS://Hooks.Example.com  ', strict)).toBe('https://hooks.example.com/');
  });

  it('keeps a reporter reference (not a URL) as given', () => {
    expect(checkCallback('+86 20 1234 5678', strict)).toBe('+86 20 1234 5678');
    expect(checkCallback('tel:+862012345678', strict)).toBe('tel:+862012345678');
    expect(checkCallback('case 2026-000123', strict)).toBe('case 2026-000123');
    expect(checkCallback(undefined, strict)).toBeUndefined();
    expect(checkCallback('   ', strict)).toBeUndefined();
  });

  it('refuses a URL that is not HTTPS: CALLBACK_NOT_HTTPS', () => {
    expect(code(() => checkCallback('http://hooks.example.com/r', strict))).toBe('CALLBACK_NOT_HTTPS');
    expect(code(() => checkCallback('ftp://hooks.example.com/r', strict))).toBe('CALLBACK_NOT_HTTPS');
    expect(code(() => checkCallback('ws://hooks.example.com/r', { ...strict, allowHttp: true }))).toBe(
      'CALLBACK_NOT_HTTPS',
    );
    expect(checkCallback('http://hooks.example.com/r', { ...strict, allowHttp: true })).toBe(
      'http://hooks.example.com/r',
    );
  });

  it('refuses loopback, private, link-local and local names: CALLBACK_PRIVATE_ADDRESS', () => {
    for (const u of [
      'https://127.0.0.1/x',
      'https://127.8.9.10:8443/x',
      'https://10.1.2.3/x',
      'https://172.20.0.5/x',
      'https://192.168.1.10/x',
      'https://169.254.169.254/latest/meta-data',
      'https://100.64.0.1/x',
      'https://0.0.0.0/x',
      'https://[::1]/x',
      'https://[fd00::1]/x',
      'https://[fe80::1]/x',
      'https://[::ffff:127.0.0.1]/x',
      'https://localhost/x',
      'https://api.localhost/x',
      'https://printer.local/x',
      'https://intranet/x',
    ]) {
      expect(
        code(() => checkCallback(u, strict)),
        u,
      ).toBe('CALLBACK_PRIVATE_ADDRESS');
    }
    // Tests (and nothing else) may allow them.
    expect(checkCallback('http://127.0.0.1:4000/cb', { allowHttp: true, allowPrivate: true })).toBe(
      'http://127.0.0.1:4000/cb',
    );
  });

  it('refuses credentials in the URL and non-strings', () => {
    expect(code(() => checkCallback('https://u:p@hooks.example.com/', strict))).toBe('INVALID_FIELD');
    expect(code(() => checkCallback(42, strict))).toBe('INVALID_FIELD');
    expect(code(() => checkCallback('https://exa mple.com/', strict))).toBe('INVALID_FIELD');
  });

  it('classifies addresses and names', () => {
    expect(isPrivateAddress('8.8.8.8')).toBe(false);
    expect(isPrivateAddress('2001:4860:4860::8888')).toBe(false);
    expect(isPrivateAddress('172.32.0.1')).toBe(false);
    expect(isPrivateAddress('172.31.255.255')).toBe(true);
    expect(isLocalHostName('hooks.example.com')).toBe(false);
    expect(isLocalHostName('LOCALHOST.')).toBe(true);
  });
});

describe('signature', () => {
  const secret = 'receiver-shared-secret-0123456789';
  const body = '{"id":"inc_1:1","status":"received"}';

  it('is HMAC-SHA256 over "<timestamp>.<body>", hex, prefixed v1=', () => {
    // Computed independently: printf '%s' '1767225600.<body>' | openssl dgst -sha256 -hmac '<secret>'
    expect(signWebhook(secret, 1767225600, body)).toBe(
      'v1=2b292e061502a66959dfea83a049a2328a22a5ee17aca69e1a55dfd2ac4eece8',
    );
    expect(signWebhook(secret, 1767225600, body)).not.toBe(signWebhook(secret, 1767225601, body));
  });

  it('verifies: right secret and body within 5 minutes; refuses tampering, other secrets, stale times', () => {
    const ts = 1767225600;
    const sig = signWebhook(secret, ts, body);
    const h = { signature: sig, timestamp: String(ts) };
    expect(verifyWebhook(secret, h, body, ts + 10)).toBe(true);
    expect(verifyWebhook(secret, h, body.replace('received', 'resolved'), ts)).toBe(false);
    expect(verifyWebhook('another-secret-0123456789abcdef', h, body, ts)).toBe(false);
    expect(verifyWebhook(secret, h, body, ts + 301)).toBe(false);
    expect(verifyWebhook(secret, { signature: sig, timestamp: String(ts + 1) }, body, ts)).toBe(false);
    expect(verifyWebhook(secret, { timestamp: String(ts) }, body, ts)).toBe(false);
  });
});

describe('public updates of an incident', () => {
  const ev = (id: number, kind: string, at: number, unitId?: string): StoredEvent => ({
    id,
    kind,
    at,
    actor: 'x',
    data: {},
    incidentId: 'inc_1',
    ...(unitId ? { unitId } : {}),
  });

  it('received, assigned, on scene, resolved, closed — each public status once, in order, no units', () => {
    const tl = [
      ev(1, 'reported', 100),
      ev(2, 'assigned', 101, 'P1'),
      ev(3, 'assigned', 101),
      ev(4, 'declined', 120, 'P1'),
      ev(5, 'queued', 120),
      ev(6, 'assigned', 121, 'P2'),
      ev(7, 'assigned', 121),
      ev(8, 'en_route', 130),
      ev(9, 'on_scene', 400),
      ev(10, 'resolved', 900),
      ev(11, 'closed', 1000),
    ];
    const ups = publicUpdates(tl);
    expect(ups.map((u) => [u.seq, u.status, u.at])).toEqual([
      [1, 'received', 100],
      [2, 'assigned', 101],
      [3, 'on_scene', 400],
      [4, 'resolved', 900],
      [5, 'closed', 1000],
    ]);
    const body = JSON.parse(updateBody({ id: 'inc_1', type: 'noise-complaint' }, ups[1]));
    expect(body).toEqual({
      id: 'inc_1:2',
      incidentId: 'inc_1',
      sequence: 2,
      status: 'assigned',
      text: expect.any(String),
      at: '1970-01-01T00:01:41.000Z',
      type: 'noise-complaint',
    });
    expect(JSON.stringify(body)).not.toMatch(/P1|P2|unit|dispatcher/);
  });

  it('a prefix of the timeline gives a prefix of the updates (recording twice records nothing new)', () => {
    const tl = [
      ev(1, 'reported', 100),
      ev(2, 'assigned', 101),
      ev(3, 'on_scene', 300),
      ev(4, 'cancelled', 400),
    ];
    const all = publicUpdates(tl);
    expect(publicUpdates(tl.slice(0, 2))).toEqual(all.slice(0, 2));
    expect(all.at(-1)?.status).toBe('cancelled');
  });
});
