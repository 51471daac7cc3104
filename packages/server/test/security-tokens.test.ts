/**
 * Token attacks against real servers, seen through the real `centrifuge`
 * client and raw `ws`: alg none, HS/RS key confusion, algorithm allow-list,
 * expired (109 → getToken), not yet valid, wrong audience/issuer, revoked by
 * jti and by user, and keys from a JWKS URL rotated without a restart.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { after, before, test } from 'node:test';
import { exportJWK, SignJWT, type JWK } from 'jose';
import { type Backend, startBackend } from './helpers/backend.js';
import { RawClient } from './helpers/raw.js';
import { scope, type TestContextLike } from './helpers/scope.js';
import { makeClient } from './helpers/sdk.js';
import { type RunningServer, startServer } from './helpers/server.js';
import { mintToken, nowSec, unsignedToken } from './helpers/tokens.js';
import { collect, waitFor } from './helpers/wait.js';

const S = scope();
after(() => S.close());

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const AUD = 'switchboard-test';
const ISS = 'https://issuer.test';

/** RS256-only server with audience, issuer and 10 s clock skew; no HMAC secret at all. */
let rs: RunningServer;
/** HMAC server that also has the RSA public key (both families configured). */
let hs: RunningServer;

before(async () => {
  [rs, hs] = await Promise.all([
    startServer(S, {
      client: {
        token: { hmac_secret_key: '', rsa_public_key: rsaPem, audience: AUD, issuer: ISS, clock_skew: '10s', algorithms: ['RS256'] },
      },
    }),
    startServer(S, { client: { token: { rsa_public_key: rsaPem }, expired_close_delay: '300ms' } }),
  ]);
});

function signRs(claims: Record<string, unknown>, key: KeyObject = rsa.privateKey, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...header }).sign(key);
}

type Outcome =
  | { connected: true; result: Record<string, unknown> }
  | { connected: false; error?: { code: number; temporary?: boolean }; closeCode?: number };

/** Connect over raw ws: the reply, or the close code when the server ends the connection instead. */
async function rawConnect(t: TestContextLike, server: RunningServer, token: string): Promise<Outcome & { raw: RawClient }> {
  const raw = await RawClient.open(t, server);
  raw.send(JSON.stringify({ id: 1, connect: { token } }));
  // The reply, or the close when the server ends the connection instead (reply() rejects then).
  const r = await raw.reply(1, 8000).catch(() => undefined);
  if (r?.error) return { connected: false, error: r.error, raw };
  if (r) return { connected: true, result: r.connect, raw };
  const c = await raw.closedWithin(8000);
  return { connected: false, closeCode: c.code, raw };
}

/** Connect with the SDK: resolves with the disconnect code, or 0 once connected. */
async function sdkConnect(t: TestContextLike, server: RunningServer, token: string): Promise<number> {
  const c = makeClient(t, server, { token });
  const ended = Promise.race([
    waitFor(c, 'connected', { ms: 8000 }).then(() => 0),
    waitFor(c, 'disconnected', { ms: 8000 }).then((ctx: { code: number }) => ctx.code),
  ]);
  c.connect();
  return ended;
}

const good = (extra: Record<string, unknown> = {}) => ({ sub: 'alice', aud: AUD, iss: ISS, exp: nowSec() + 3600, ...extra });

test('RS256 token with the right audience and issuer connects (the baseline the attacks differ from)', async (t) => {
  assert.equal(await sdkConnect(t, rs, await signRs(good())), 0);
});

test('alg none is refused with 3500 on both servers', async (t) => {
  assert.equal(await sdkConnect(t, rs, unsignedToken(good())), 3500);
  assert.equal(await sdkConnect(t, hs, unsignedToken({ sub: 'alice' })), 3500);
  // Variants of "none" an attacker tries: other casing, and a signature appended.
  for (const alg of ['None', 'NONE', 'nOnE']) {
    const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const tok = `${enc({ alg, typ: 'JWT' })}.${enc({ sub: 'alice' })}.${Buffer.from('sig').toString('base64url')}`;
    const o = await rawConnect(t, hs, tok);
    assert.equal(o.connected, false);
    assert.equal((o as { closeCode?: number }).closeCode, 3500, `alg ${alg}`);
  }
});

test('HS/RS key confusion: HS256 signed with the RSA public key PEM as the HMAC secret is refused with 3500', async (t) => {
  const forged = await new SignJWT(good()).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(rsaPem));
  // RSA-only server: no HMAC key exists, and HS256 is not on its allow-list.
  assert.equal(await sdkConnect(t, rs, forged), 3500);
  // Server with both an HMAC secret and the RSA key: the HS token is checked against the HMAC secret only.
  const forged2 = await new SignJWT({ sub: 'alice' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(rsaPem));
  assert.equal(await sdkConnect(t, hs, forged2), 3500);
  // ...while real tokens of both families work there.
  assert.equal(await sdkConnect(t, hs, await mintToken(hs.secret, { sub: 'alice' })), 0);
  assert.equal(await sdkConnect(t, hs, await signRs({ sub: 'alice' })), 0);
});

test('an algorithm off the allow-list is refused even with a valid signature (RS384 on an RS256-only server)', async (t) => {
  const rs384 = await new SignJWT(good()).setProtectedHeader({ alg: 'RS384' }).sign(rsa.privateKey);
  assert.equal(await sdkConnect(t, rs, rs384), 3500);
  // A token signed by another RSA key is refused too.
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  assert.equal(await sdkConnect(t, rs, await signRs(good(), other.privateKey)), 3500);
});

test('expired token: 109 to the SDK, which calls getToken and connects', async (t) => {
  let calls = 0;
  const c = makeClient(t, rs, {
    token: await signRs(good({ exp: nowSec() - 60 })), // past the 10 s skew
    getToken: async () => {
      calls++;
      return signRs(good());
    },
  });
  const errors = collect(c, 'error');
  const connected = waitFor(c, 'connected', { ms: 8000 });
  c.connect();
  await connected;
  assert.equal(calls, 1);
  const codes = errors.items.filter((e) => e.type === 'connect').map((e) => e.error.code);
  assert.deepEqual(codes, [109]);
  // The raw view: 109 is a reply, the socket stays open for the retry.
  const o = await rawConnect(t, rs, await signRs(good({ exp: nowSec() - 60 })));
  assert.equal(o.connected, false);
  assert.equal((o as { error?: { code: number } }).error?.code, 109);
  assert.equal(o.raw.closeCode, undefined);
});

test('clock skew: exp and nbf a few seconds off are tolerated, far off are not', async (t) => {
  assert.equal(await sdkConnect(t, rs, await signRs(good({ exp: nowSec() - 3 }))), 0, 'expired 3 s ago, skew 10 s');
  assert.equal(await sdkConnect(t, rs, await signRs(good({ nbf: nowSec() + 3 }))), 0, 'valid in 3 s, skew 10 s');
  // Not yet valid: nbf a minute ahead.
  assert.equal(await sdkConnect(t, rs, await signRs(good({ nbf: nowSec() + 60 }))), 3500);
  assert.equal(await sdkConnect(t, hs, await mintToken(hs.secret, { sub: 'alice', nbf: nowSec() + 60 })), 3500);
});

test('wrong or missing audience / issuer is refused with 3500', async (t) => {
  assert.equal(await sdkConnect(t, rs, await signRs(good({ aud: 'someone-else' }))), 3500);
  assert.equal(await sdkConnect(t, rs, await signRs(good({ iss: 'https://evil.test' }))), 3500);
  const { aud: _a, ...noAud } = good();
  assert.equal(await sdkConnect(t, rs, await signRs(noAud)), 3500);
  const { iss: _i, ...noIss } = good();
  assert.equal(await sdkConnect(t, rs, await signRs(noIss)), 3500);
  // An audience array that contains ours is fine.
  assert.equal(await sdkConnect(t, rs, await signRs(good({ aud: ['x', AUD] }))), 0);
});

test('revoke_token by jti: the live connection is closed with 3500, the token cannot connect again, others stay', async (t) => {
  const victim = makeClient(t, hs, { token: await mintToken(hs.secret, { sub: 'rev-user', jti: 'jti-revoked-1' }) });
  const bystander = makeClient(t, hs, { token: await mintToken(hs.secret, { sub: 'rev-user', jti: 'jti-kept-1' }) });
  for (const c of [victim, bystander]) {
    const connected = waitFor(c, 'connected');
    c.connect();
    await connected;
  }
  const gone = waitFor<{ code: number }>(victim, 'disconnected');
  assert.deepEqual(await hs.call('revoke_token', { uid: 'jti-revoked-1' }), { result: {} });
  assert.equal((await gone).code, 3500);
  assert.equal(bystander.state, 'connected');
  assert.equal(await sdkConnect(t, hs, await mintToken(hs.secret, { sub: 'rev-user', jti: 'jti-revoked-1' })), 3500);
  // A revoked token cannot be slipped in through refresh on another connection either.
  const raw = await RawClient.open(t, hs);
  await raw.connect(await mintToken(hs.secret, { sub: 'rev-user', jti: 'jti-fresh-1', exp: nowSec() + 60 }));
  raw.send(
    JSON.stringify({
      id: 2,
      refresh: { token: await mintToken(hs.secret, { sub: 'rev-user', jti: 'jti-revoked-1', exp: nowSec() + 3600 }) },
    }),
  );
  assert.equal((await raw.closedWithin()).code, 3500);
});

test('invalidate_user_tokens: tokens issued before T are refused (live and new, with or without iat), newer ones connect', async (t) => {
  const old = await mintToken(hs.secret, { sub: 'inv-user', iat: nowSec() - 120 });
  const other = await mintToken(hs.secret, { sub: 'inv-other', iat: nowSec() - 120 });
  const victim = makeClient(t, hs, { token: old });
  const bystander = makeClient(t, hs, { token: other });
  for (const c of [victim, bystander]) {
    const connected = waitFor(c, 'connected');
    c.connect();
    await connected;
  }
  const gone = waitFor<{ code: number }>(victim, 'disconnected');
  assert.deepEqual(await hs.call('invalidate_user_tokens', { user: 'inv-user', issued_before: nowSec() - 30 }), { result: {} });
  assert.equal((await gone).code, 3500);
  assert.equal(bystander.state, 'connected', 'another user is untouched');
  assert.equal(await sdkConnect(t, hs, old), 3500, 'the old token cannot reconnect');
  // A token without iat cannot prove it was issued after T: refused like an old one.
  assert.equal(await sdkConnect(t, hs, await mintToken(hs.secret, { sub: 'inv-user' })), 3500, 'no iat');
  assert.equal(await sdkConnect(t, hs, await mintToken(hs.secret, { sub: 'inv-user', iat: nowSec() })), 0, 'a newer token connects');
});

// ---- JWKS from a URL ----

interface KeyPair {
  kid: string;
  priv: KeyObject;
  jwk: JWK;
}
async function rsaKey(kid: string): Promise<KeyPair> {
  const k = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, priv: k.privateKey, jwk: { ...(await exportJWK(k.publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

test('JWKS from a URL: keys rotate without a restart; removed keys stop working; HMAC keys in a JWKS are ignored', async (t) => {
  const [k1, k2] = await Promise.all([rsaKey('k1'), rsaKey('k2')]);
  let keys: JWK[] = [k1.jwk];
  const jwks: Backend = await startBackend(t, () => ({ keys }));
  const srv = await startServer(t, {
    client: { token: { hmac_secret_key: '', jwks_public_endpoint: `${jwks.url}/.well-known/jwks.json`, jwks_refresh_cooldown: '0s' } },
  });
  // A JWKS-only server has no HMAC secret of its own (none generated behind the operator's back).
  assert.doesNotMatch(srv.stdout(), /hmac_secret_key =/);
  const tok = (k: KeyPair, sub = 'jwks-user') => signRs({ sub, exp: nowSec() + 600 }, k.priv, { kid: k.kid });

  assert.equal(await sdkConnect(t, srv, await tok(k1)), 0);
  const fetchesAfterFirst = jwks.requests.length;
  assert.ok(fetchesAfterFirst >= 1);
  // Cached: another k1 token needs no fetch.
  assert.equal(await sdkConnect(t, srv, await tok(k1)), 0);
  assert.equal(jwks.requests.length, fetchesAfterFirst);

  // Rotate at the identity provider: k2 in, k1 out. The server refetches on the unknown kid.
  keys = [k2.jwk];
  assert.equal(await sdkConnect(t, srv, await tok(k2)), 0);
  assert.ok(jwks.requests.length > fetchesAfterFirst, 'refetched on an unknown kid');
  assert.equal(await sdkConnect(t, srv, await tok(k1)), 3500, 'the removed key is refused');

  // An attacker-chosen HS256 token naming an "oct" key published in the JWKS: HMAC keys never come from a JWKS.
  const secret = Buffer.from('published-by-mistake-0123456789abcdef');
  keys = [k2.jwk, { kty: 'oct', k: secret.toString('base64url'), kid: 'hs', alg: 'HS256' }];
  const hsTok = await new SignJWT({ sub: 'attacker' }).setProtectedHeader({ alg: 'HS256', kid: 'hs' }).sign(secret);
  assert.equal(await sdkConnect(t, srv, hsTok), 3500);
  // The JWKS-only server also refuses HS256 in general (it holds no HMAC key).
  assert.equal(await sdkConnect(t, srv, await mintToken('anything-at-all', { sub: 'attacker' })), 3500);
});

test('JWKS endpoint down: an unknown key gets a temporary error (not a terminal 3500), known keys keep working', async (t) => {
  const [k1, k3] = await Promise.all([rsaKey('k1'), rsaKey('k3')]);
  const jwks = await startBackend(t, () => ({ keys: [k1.jwk] }));
  const srv = await startServer(t, {
    client: { token: { hmac_secret_key: '', jwks_public_endpoint: `${jwks.url}/jwks`, jwks_refresh_cooldown: '0s' } },
  });
  const tok = (k: KeyPair) => signRs({ sub: 'u', exp: nowSec() + 600 }, k.priv, { kid: k.kid });
  assert.equal(await sdkConnect(t, srv, await tok(k1)), 0);
  await jwks.close();
  // The identity provider is down: the server cannot tell whether k3 is real, so the client should retry, not give up.
  const o = await rawConnect(t, srv, await tok(k3));
  assert.equal(o.connected, false);
  const err = (o as { error?: { code: number; temporary?: boolean } }).error;
  assert.ok(err, `expected an error reply, got close ${String((o as { closeCode?: number }).closeCode)}`);
  assert.equal(err.code, 100);
  assert.equal(err.temporary, true);
  assert.equal(o.raw.closeCode, undefined, 'socket stays open for the retry');
  // Keys already cached still verify while the endpoint is down.
  assert.equal(await sdkConnect(t, srv, await tok(k1)), 0);
});

// ---- ECDSA and Ed25519 keys in PEM ----

test('ES256 and EdDSA connection tokens verify against PEM public keys; a token signed by another key is 3500', async (t) => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = generateKeyPairSync('ed25519');
  const pem = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }).toString();
  const srv = await startServer(t, {
    client: { token: { hmac_secret_key: '', ecdsa_public_key: pem(ec.publicKey), ed25519_public_key: pem(ed.publicKey) } },
  });
  const claims = { sub: 'curvy', exp: nowSec() + 600 };
  const es = await mintToken(ec.privateKey, claims, 'ES256');
  const eddsa = await mintToken(ed.privateKey, claims, 'EdDSA');
  for (const token of [es, eddsa]) {
    const o = await rawConnect(t, srv, token);
    assert.equal(o.connected, true, JSON.stringify(o.connected ? '' : (o as { error?: unknown; closeCode?: number })));
  }
  assert.equal(await sdkConnect(t, srv, es), 0, 'the SDK connects with ES256');
  assert.equal(await sdkConnect(t, srv, eddsa), 0, 'the SDK connects with EdDSA');
  // Signed by other keys of the same kinds: refused.
  const ec2 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed2 = generateKeyPairSync('ed25519');
  assert.equal(await sdkConnect(t, srv, await mintToken(ec2.privateKey, claims, 'ES256')), 3500);
  assert.equal(await sdkConnect(t, srv, await mintToken(ed2.privateKey, claims, 'EdDSA')), 3500);
  // The user comes from the token's sub.
  const raw = await RawClient.open(t, srv);
  await raw.connect(eddsa);
  const gone = raw.closedWithin();
  await srv.call('disconnect', { user: 'curvy' });
  assert.equal((await gone).code, 3503);
});
