/**
 * Starts the quoting app on the memory engine: `npm run quoting` at the repo
 * root (builds first), or `npm start -w @switchboard/example-quoting`.
 * PORT (default 3100), HOST (default 127.0.0.1).
 */
import { fileURLToPath } from 'node:url';
import { buildApp } from './app.js';

const port = Number(process.env.PORT ?? 3100);
const host = process.env.HOST ?? '127.0.0.1';
const webDir = fileURLToPath(new URL('../web', import.meta.url));
const { app, sb } = await buildApp({ webDir, logLevel: process.env.LOG_LEVEL });
await app.listen({ port, host });
const addr = app.server.address();
console.log(`quoting app on http://${host}:${typeof addr === 'object' && addr ? addr.port : port}`);

const stop = async (): Promise<void> => {
  await sb.shutdown();
  await app.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
