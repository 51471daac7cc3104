/**
 * HS256/384/512 tokens are verified synchronously with node:crypto (jose's
 * WebCrypto path cost ~110 µs of CPU per connect). Differential check: for
 * every token below, valid, forged, malformed or with claims off, the verifier
 * decides exactly as jose's own jwtVerify does with the same options (accepted
 * with the same claims, expired, or invalid); and a real server connects the
 * valid ones and refuses the others with the protocol's codes.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, test } from 'node:test';
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { TokenError, TokenVerifier, type TokenKeys } from '../src/auth/jwt.js';
import { RawClient } from './helpers/raw.js';
import { scope } from './helpers/scope.js';
import { startServer } from './helpers/server.js';
import { mintToken, nowSec } from './helpers/tokens.js';

const S = scope();
after(() => S.close());

const SECRET = 'hmac-differential-secret';
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64url');
const json = (o: unknown): string => b64(JSON.stringify(o));

/** A compact JWS over raw header and payload segments, signed with `secret` (HS256 unless the header says otherwise). */
function signed(headerSeg: string, payloadSeg: string, secret = SECRET, hash = 'sha256'): string {
  const input = `${headerSeg}.${payloadSeg}`;
  return `${input}.${createHmac(hash, secret).update(input).digest('base64url')}`;
}
const hs256 = (claims: unknown, header: Record<string, unknown> = {}): string =>
  signed(json({ alg: 'HS256', typ: 'JWT', ...header }), json(claims));

type Decision = { ok: true; payload: JWTPayload } | { ok: false; kind: 'expired' | 'invalid' };

async function ours(cfg: TokenKeys, token: string): Promise<Decision> {
  try {
    return { ok: true, payload: await new TokenVerifier(cfg).verify(token) };
  } catch (e) {
    assert.ok(e instanceof TokenError, `not a TokenError: ${String(e)}`);
    return { ok: false, kind: e.kind };
  }
}

/** jose's decision with the options TokenVerifier gives it. */
async function jose(cfg: TokenKeys, token: string, alg: string): Promise<Decision> {
  try {
    const r = await jwtVerify(token, new TextEncoder().encode(cfg.hmac_secret_key), {
      algorithms: [alg],
      audience: cfg.audience || undefined,
      issuer: cfg.issuer || undefined,
      clockTolerance: Math.floor((cfg.clock_skew ?? 0) / 1000),
    });
    return { ok: true, payload: r.payload };
  } catch (e) {
    return { ok: false, kind: e instanceof errors.JWTExpired ? 'expired' : 'invalid' };
  }
}

const base: TokenKeys = {
  hmac_secret_key: SECRET,
  rsa_public_key: '',
  ecdsa_public_key: '',
  ed25519_public_key: '',
  audience: '',
  issuer: '',
};
const strict: TokenKeys = { ...base, audience: 'aud-1', issuer: 'iss-1', clock_skew: 10_000 };

function cases(): Array<[string, string, string]> {
  const now = nowSec();
  const good = { sub: 'u1', aud: 'aud-1', iss: 'iss-1', exp: now + 3600 };
  const valid = hs256(good);
  const [h, p, sig] = valid.split('.') as [string, string, string];
  const flip = (s: string): string => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
  return [
    ['valid HS256', valid, 'HS256'],
    ['valid HS384', signed(json({ alg: 'HS384' }), json(good), SECRET, 'sha384'), 'HS384'],
    ['valid HS512', signed(json({ alg: 'HS512' }), json(good), SECRET, 'sha512'), 'HS512'],
    ['no claims at all', hs256({}), 'HS256'],
    ['another secret', signed(h, p, 'not-the-secret'), 'HS256'],
    ['payload changed, old signature', `${h}.${json({ ...good, sub: 'admin' })}.${sig}`, 'HS256'],
    ['signature altered', `${h}.${p}.${flip(sig)}`, 'HS256'],
    ['signature truncated', `${h}.${p}.${sig.slice(0, -2)}`, 'HS256'],
    ['signature empty', `${h}.${p}.`, 'HS256'],
    ['HS384 signature under an HS256 header', signed(h, p, SECRET, 'sha384'), 'HS256'],
    ['two segments', `${h}.${p}`, 'HS256'],
    ['four segments', `${valid}.x`, 'HS256'],
    ['payload not JSON', signed(h, b64('not json')), 'HS256'],
    ['payload a JSON array', signed(h, json([1, 2])), 'HS256'],
    ['payload JSON null', signed(h, json(null)), 'HS256'],
    ['payload a JSON string', signed(h, json('x')), 'HS256'],
    ['payload invalid UTF-8', signed(h, b64(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))), 'HS256'],
    ['payload segment with "+"', signed(h, `${p}+`), 'HS256'],
    ['expired an hour ago', hs256({ ...good, exp: now - 3600 }), 'HS256'],
    ['expires now', hs256({ ...good, exp: now }), 'HS256'],
    ['expired 3 s ago (within a 10 s skew)', hs256({ ...good, exp: now - 3 }), 'HS256'],
    ['exp a string', hs256({ ...good, exp: String(now + 3600) }), 'HS256'],
    ['nbf in a minute', hs256({ ...good, nbf: now + 60 }), 'HS256'],
    ['nbf in 3 s (within a 10 s skew)', hs256({ ...good, nbf: now + 3 }), 'HS256'],
    ['nbf a string', hs256({ ...good, nbf: 'soon' }), 'HS256'],
    ['iat a string', hs256({ ...good, iat: 'then' }), 'HS256'],
    ['iat in the future', hs256({ ...good, iat: now + 3600 }), 'HS256'],
    ['audience elsewhere', hs256({ ...good, aud: 'aud-2' }), 'HS256'],
    ['audience array with ours', hs256({ ...good, aud: ['x', 'aud-1'] }), 'HS256'],
    ['audience array without ours', hs256({ ...good, aud: ['x', 'y'] }), 'HS256'],
    ['audience missing', hs256({ sub: 'u1', iss: 'iss-1', exp: now + 3600 }), 'HS256'],
    ['audience a number', hs256({ ...good, aud: 1 }), 'HS256'],
    ['issuer elsewhere', hs256({ ...good, iss: 'iss-2' }), 'HS256'],
    ['issuer missing', hs256({ sub: 'u1', aud: 'aud-1', exp: now + 3600 }), 'HS256'],
    ['crit header (left to jose)', hs256(good, { crit: ['exp'], exp: 1 }), 'HS256'],
    ['b64 false (left to jose)', hs256(good, { b64: false, crit: ['b64'] }), 'HS256'],
  ];
}

test('HS* tokens: the verifier decides as jose does, with and without audience, issuer and clock skew', async () => {
  let accepted = 0;
  let expired = 0;
  for (const cfg of [base, strict]) {
    for (const [name, token, alg] of cases()) {
      const want = await jose(cfg, token, alg);
      const got = await ours(cfg, token);
      assert.deepEqual(got, want, `${name} (audience ${cfg.audience || '-'}, skew ${cfg.clock_skew ?? 0} ms)`);
      if (got.ok) accepted++;
      else if (got.kind === 'expired') expired++;
    }
  }
  // The table exercises both outcomes, not only refusals.
  assert.ok(accepted >= 10 && expired >= 3, `accepted ${accepted}, expired ${expired}`);
});

test('HS* tokens: an algorithm off the allow-list is refused before the signature is looked at', async () => {
  const token = await mintToken(SECRET, { sub: 'u1' });
  assert.deepEqual(await ours({ ...base, algorithms: ['HS512'] }, token), { ok: false, kind: 'invalid' });
  assert.deepEqual(await ours({ ...base, algorithms: ['HS256'] }, token), { ok: true, payload: { sub: 'u1' } });
});

test('HS256 on a real server: a valid token connects as its user, a forged one is closed with 3500, an expired one gets 109', async (t) => {
  const server = await startServer(S, {});
  const connect = async (token: string): Promise<{ client?: string; error?: number; close?: number }> => {
    const raw = await RawClient.open(t, server);
    raw.send(JSON.stringify({ id: 1, connect: { token } }));
    const r = await raw.reply(1, 8000).catch(() => undefined);
    if (r?.error) return { error: r.error.code };
    if (r) return { client: (r.connect as { client: string }).client };
    return { close: (await raw.closedWithin(8000)).code };
  };
  const ok = await connect(await mintToken(server.secret, { sub: 'hmac-alice', exp: nowSec() + 60 }));
  assert.ok(ok.client, JSON.stringify(ok));
  // the server took the user from the verified claims
  const conns = (await server.call('connections', { user: 'hmac-alice' })).result.connections as Record<string, { user: string }>;
  assert.deepEqual(Object.keys(conns), [ok.client]);
  const forged = await mintToken('someone-else', { sub: 'hmac-alice', exp: nowSec() + 60 });
  assert.deepEqual(await connect(forged), { close: 3500 });
  assert.deepEqual(await connect(await mintToken(server.secret, { sub: 'hmac-alice', exp: nowSec() - 60 })), { error: 109 });
});
