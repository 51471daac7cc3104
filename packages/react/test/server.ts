/**
 * A real Switchboard node in the test process (the server package, embedded
 * as an app embeds it) with HS256 connection tokens, and clients for it
 * made with the real `centrifuge` SDK over `ws`.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Centrifuge, type Options } from 'centrifuge';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { Switchboard } from '@switchboard/server';

const SECRET = 'react-hooks-test-secret';

export interface Node {
  sb: Switchboard;
  url: string;
  token(user: string, expSeconds?: number): Promise<string>;
  client(user: string, options?: Partial<Options>): Promise<Centrifuge>;
}

type After = { after(fn: () => unknown): void };

export async function startNode(t: After, config: Record<string, unknown> = {}): Promise<Node> {
  const sb = new Switchboard({
    config: { log: { level: 'error' }, client: { token: { hmac_secret_key: SECRET } }, ...config },
  });
  const server = createServer((_req, res) => res.writeHead(404).end());
  await sb.start();
  sb.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    await sb.shutdown();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/connection/websocket`;
  const token = (user: string, exp = Math.floor(Date.now() / 1000) + 3600): Promise<string> =>
    new SignJWT({ sub: user, exp }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
  const client = async (user: string, options: Partial<Options> = {}): Promise<Centrifuge> => {
    const c = new Centrifuge(url, {
      websocket: WebSocket,
      token: await token(user),
      minReconnectDelay: 50,
      maxReconnectDelay: 200,
      ...options,
    });
    t.after(() => c.disconnect());
    return c;
  };
  return { sb, url, token, client };
}
