import { createHmac, timingSafeEqual } from 'node:crypto';

/** Headers of every webhook delivery. */
export const WebhookHeaders = {
  /** `sha256=<hex>`: HMAC-SHA256 with the endpoint's secret over `<timestamp>.<body>`. */
  signature: 'x-switchboard-signature',
  /** Unix seconds when this attempt was signed (a receiver refuses old ones: replays). */
  timestamp: 'x-switchboard-timestamp',
  /** The event's id: the same on every attempt, for the receiver's dedup. */
  eventId: 'x-switchboard-event-id',
  event: 'x-switchboard-event',
} as const;

/** The signature header's value for a body signed at `timestamp` (unix seconds). */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/**
 * A receiver's check: the signature matches and the timestamp is within
 * `toleranceSec` of now (default 5 minutes). Compares in constant time.
 */
export function verifyWebhook(
  secret: string,
  body: string,
  signature: string | undefined,
  timestamp: string | undefined,
  toleranceSec = 300,
  now = Date.now(),
): boolean {
  if (!signature || !timestamp || !/^\d+$/.test(timestamp)) return false;
  const ts = Number(timestamp);
  if (Math.abs(now / 1000 - ts) > toleranceSec) return false;
  const want = Buffer.from(signWebhook(secret, ts, body));
  const got = Buffer.from(signature);
  return got.length === want.length && timingSafeEqual(got, want);
}
