/**
 * Real `centrifuge` clients (JSON and Protobuf builds) over the HTTP
 * emulation transports, and an embedded node whose HTTP server serves them
 * (`sb.handleHttp` first, as an app's request handler would).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Centrifuge, type Options } from 'centrifuge';
import { Centrifuge as ProtobufCentrifuge } from 'centrifuge/build/protobuf';
import { EventSource } from 'eventsource';
import { Switchboard, type SwitchboardOptions } from '../../src/node.js';
import { deepMerge } from '../../src/config/load.js';
import type { TestContextLike } from './scope.js';
import { mintToken } from './tokens.js';
import { waitFor } from './wait.js';

export type EmulationKind = 'http_stream' | 'sse';

export interface HttpNode {
  readonly sb: Switchboard;
  readonly server: Server;
  /** http://127.0.0.1:PORT */
  readonly base: string;
  readonly ws: string;
  readonly secret: string;
}

export const EMU_SECRET = 'emulation-test-secret';

/** An embedded node with http_stream and sse on, serving them from its plain HTTP server; stopped with the test. */
export async function httpNode(
  t: TestContextLike,
  config: Record<string, unknown> = {},
  opts: Omit<SwitchboardOptions, 'config' | 'resolvedConfig'> = {},
): Promise<HttpNode> {
  const base = {
    log: { level: 'error' },
    client: { token: { hmac_secret_key: EMU_SECRET } },
    http_stream: { enabled: true },
    sse: { enabled: true },
  };
  const sb = new Switchboard({ ...opts, config: deepMerge(base, config) });
  const server = createServer((req, res) => {
    if (sb.handleHttp(req, res)) return;
    res.statusCode = 404;
    res.end();
  });
  await sb.start();
  sb.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    await sb.shutdown();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const port = (server.address() as AddressInfo).port;
  return { sb, server, base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/connection/websocket`, secret: EMU_SECRET };
}

export interface EmuTarget {
  /** http://host:port of the node holding the stream. */
  readonly base: string;
  readonly secret: string;
  /** Where the SDK POSTs `/emulation` (another node's base, to test forwarding); the stream's node by default. */
  readonly emulationBase?: string;
}

/** SDK options for one emulation transport (Node has fetch and ReadableStream; EventSource comes from the `eventsource` package). */
export function emulationOptions(target: EmuTarget, opts: Partial<Options> = {}): Partial<Options> {
  return {
    emulationEndpoint: `${target.emulationBase ?? target.base}/emulation`,
    eventsource: EventSource,
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    timeout: 5000,
    ...opts,
  };
}

/** A `centrifuge` client (JSON, or the Protobuf build) on one emulation transport, disconnected when the test ends. Not connected yet. */
export function emuClient(
  t: TestContextLike,
  target: EmuTarget,
  kind: EmulationKind,
  opts: Partial<Options> & { protobuf?: boolean } = {},
): Centrifuge {
  const { protobuf, ...rest } = opts;
  const transports = [{ transport: kind, endpoint: `${target.base}/connection/${kind}` }];
  const Ctor = protobuf ? (ProtobufCentrifuge as unknown as typeof Centrifuge) : Centrifuge;
  const c = new Ctor(transports, emulationOptions(target, rest));
  t.after(() => c.disconnect());
  return c;
}

/** An emulation client for `user` (HS256 token from the target's secret), connected; resolves with the client and its connect context. */
export async function connectedEmuClient(
  t: TestContextLike,
  target: EmuTarget,
  kind: EmulationKind,
  user: string,
  opts: Partial<Options> & { protobuf?: boolean } = {},
  claims: Record<string, unknown> = {},
): Promise<{ client: Centrifuge; ctx: any }> {
  const token = await mintToken(target.secret, { sub: user, ...claims });
  const client = emuClient(t, target, kind, { token, ...opts });
  const connected = waitFor(client, 'connected');
  client.connect();
  return { client, ctx: await connected };
}
