/**
 * An HTTP sink for the tracing and webhook variants of Switchboard: answers
 * 200 to every POST (OTLP/HTTP spans at /v1/traces, webhook deliveries at
 * /hook), so the system under test pays its own export and delivery costs
 * and never waits on a slow receiver. `GET /health`; `GET /stats` counts.
 */
import { createServer } from 'node:http';

const i = process.argv.indexOf('--port');
const port = Number(i >= 0 ? process.argv[i + 1] : 0);
const counts: Record<string, number> = {};

createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(req.url === '/stats' ? JSON.stringify(counts) : '{}');
    return;
  }
  req.resume();
  req.on('end', () => {
    const k = req.url ?? '/';
    counts[k] = (counts[k] ?? 0) + 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
}).listen(port, '127.0.0.1');
