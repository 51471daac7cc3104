/**
 * The revocation store behind the node's one async check, and which live
 * connections a revocation message hits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RevocationStore } from '../src/node/revocations.js';

const sec = (ms: number): number => Math.floor(ms / 1000);

test('a revoked jti is revoked for any user; others are not', async () => {
  const store = new RevocationStore();
  assert.equal(await store.isRevoked({ user: 'u', jti: 'j1', iat: sec(Date.now()) }), false);
  store.record({ type: 'revoke', jti: 'j1' });
  assert.equal(await store.isRevoked({ user: 'u', jti: 'j1', iat: sec(Date.now()) }), true);
  assert.equal(await store.isRevoked({ user: 'other', jti: 'j1', iat: sec(Date.now()) }), true);
  assert.equal(await store.isRevoked({ user: 'u', jti: 'j2', iat: sec(Date.now()) }), false);
});

test("a user's tokens issued before the invalidation time are revoked; later ones and other users' are not", async () => {
  const store = new RevocationStore();
  const t0 = Date.now();
  store.record({ type: 'revoke', user: 'u', issuedBefore: t0 });
  assert.equal(await store.isRevoked({ user: 'u', iat: sec(t0) - 10 }), true);
  assert.equal(await store.isRevoked({ user: 'u', iat: sec(t0) + 10 }), false);
  assert.equal(await store.isRevoked({ user: 'u' }), true, 'a token without iat cannot show it is newer');
  assert.equal(await store.isRevoked({ user: 'v', iat: sec(t0) - 10 }), false);
  assert.equal(store.revokedBefore('u'), t0);
  assert.equal(store.revokedBefore('v'), 0);
});

test('a revocation message hits the live connections standing on a matching token', () => {
  const t0 = Date.now();
  const byJti = { type: 'revoke', jti: 'j1' } as const;
  const byUser = { type: 'revoke', user: 'u', issuedBefore: t0 } as const;
  assert.equal(RevocationStore.hits(byJti, { user: 'x', jti: 'j1' }), true);
  assert.equal(RevocationStore.hits(byJti, { user: 'x', jti: 'j2' }), false);
  assert.equal(RevocationStore.hits(byJti, { user: 'x' }), false);
  assert.equal(RevocationStore.hits(byUser, { user: 'u', iat: sec(t0) - 1 }), true);
  assert.equal(RevocationStore.hits(byUser, { user: 'u', iat: sec(t0) + 1 }), false);
  assert.equal(RevocationStore.hits(byUser, { user: 'w', iat: sec(t0) - 1 }), false);
});
