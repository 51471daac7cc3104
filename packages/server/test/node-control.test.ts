/**
 * Which live connections a revocation message hits (the engine keeps the
 * revocation for later connects; the node closes the connections already
 * standing on a revoked token).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { revocationHits } from '../src/node/control.js';

const sec = (ms: number): number => Math.floor(ms / 1000);

test('a revocation by jti hits that token whoever the user; by user, the tokens issued before the time', () => {
  const t0 = Date.now();
  const byJti = { type: 'revoke', jti: 'j1' } as const;
  const byUser = { type: 'revoke', user: 'u', issuedBefore: t0 } as const;
  assert.equal(revocationHits(byJti, { user: 'x', jti: 'j1' }), true);
  assert.equal(revocationHits(byJti, { user: 'x', jti: 'j2' }), false);
  assert.equal(revocationHits(byJti, { user: 'x' }), false);
  assert.equal(revocationHits(byUser, { user: 'u', iat: sec(t0) - 1 }), true);
  assert.equal(revocationHits(byUser, { user: 'u', iat: sec(t0) + 1 }), false);
  assert.equal(revocationHits(byUser, { user: 'u' }), true, 'a token without iat cannot show it is newer');
  assert.equal(revocationHits(byUser, { user: 'w', iat: sec(t0) - 1 }), false);
});
