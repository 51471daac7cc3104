import { pino, type Logger } from 'pino';

export type { Logger };

/** Keys whose values never reach a log line. */
const REDACT = [
  'token',
  '*.token',
  'apiKey',
  '*.apiKey',
  'key',
  '*.key',
  'hmac_secret_key',
  '*.hmac_secret_key',
  'headers.authorization',
  'headers["x-api-key"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const opts = {
    level: level === 'none' ? 'silent' : level,
    base: { service: 'switchboard' },
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  return destination ? pino(opts, destination) : pino(opts);
}
