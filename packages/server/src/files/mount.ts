import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The URL prefix of file requests (`files.path` without a trailing slash). */
export function filesPrefix(path: string): string {
  return path.replace(/\/+$/, '') || '/files';
}

/** Is this request URL under the prefix? */
export function underPrefix(prefix: string, url: string | undefined): boolean {
  if (!url) return false;
  return url === prefix || url.startsWith(prefix + '/') || url.startsWith(prefix + '?');
}

/**
 * Takes requests under `prefix` on an HTTP server the app (or Fastify)
 * already handles; every other request goes to the server's own request
 * listeners as before. Kept apart from the file service so that a node
 * without files never loads tus: `handler()` is undefined until the node
 * has started (503 until then).
 */
export function mountFiles(server: Server, prefix: string, handler: () => RequestHandler | undefined): void {
  const others = server.listeners('request') as RequestHandler[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!underPrefix(prefix, req.url)) {
      for (const l of others) l.call(server, req, res);
      return;
    }
    const h = handler();
    if (h) h(req, res);
    else res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8' }).end('{"error":{"code":503,"message":"not started"}}');
  });
}
