import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The peers (raw ws, Socket.IO) accept the same publish calls as the
 * Centrifugo HTTP API (`/api/publish`, `/api/batch`) so one publisher drives
 * every system under test the same way. Also `/health` and `/stats`.
 */
export function apiHandler(publish: (channel: string, data: unknown) => void, connections: () => number) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return true;
    }
    if (req.method === 'GET' && url === '/stats') {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (gc) gc();
      const m = process.memoryUsage();
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, connections: connections() }));
      return true;
    }
    if (req.method === 'POST' && (url === '/api/publish' || url === '/api/batch')) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as {
            channel?: string;
            data?: unknown;
            commands?: { publish?: { channel: string; data: unknown } }[];
          };
          if (url === '/api/publish') {
            publish(String(body.channel), body.data);
            res.writeHead(200, { 'content-type': 'application/json' }).end('{"result":{}}');
          } else {
            const replies: string[] = [];
            for (const cmd of body.commands ?? []) {
              if (cmd.publish) {
                publish(cmd.publish.channel, cmd.publish.data);
                replies.push('{"publish":{}}');
              } else replies.push('{"error":{"code":102,"message":"unknown command"}}');
            }
            res.writeHead(200, { 'content-type': 'application/json' }).end(`{"replies":[${replies.join(',')}]}`);
          }
        } catch {
          res.writeHead(400).end();
        }
      });
      return true;
    }
    return false;
  };
}

export function portFromArgs(): number {
  const i = process.argv.indexOf('--port');
  const port = i >= 0 ? Number(process.argv[i + 1]) : 0;
  if (!Number.isInteger(port) || port <= 0) throw new Error('usage: --port N');
  return port;
}
