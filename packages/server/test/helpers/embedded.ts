/**
 * An embedded Switchboard in the test process (as an app embeds it): a plain
 * HTTP server on a free port with the node attached, shut down when the test
 * ends. For tests that need the node's objects (hub, metrics) next to real
 * sockets; tests of the CLI and config use the process launcher in server.ts.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Switchboard, type SwitchboardOptions } from '../../src/node.js';
import type { TestContextLike } from './scope.js';

export const SECRET = 'embedded-test-secret';

export interface EmbeddedNode {
  readonly sb: Switchboard;
  readonly server: Server;
  readonly port: number;
  /** ws:// URL of the node's WebSocket endpoint. */
  readonly ws: string;
}

/** Starts a node with `config` merged over a quiet, HS256-token base; stopped with the test. */
export async function embedded(
  t: TestContextLike,
  config: Record<string, unknown> = {},
  opts: Omit<SwitchboardOptions, 'config' | 'resolvedConfig'> = {},
): Promise<EmbeddedNode> {
  const base = { log: { level: 'error' }, client: { token: { hmac_secret_key: SECRET } } };
  const sb = new Switchboard({ ...opts, config: merge(base, config) });
  const server = createServer((_req, res) => {
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
  return { sb, server, port, ws: `ws://127.0.0.1:${port}/connection/websocket` };
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      prev && v && typeof prev === 'object' && typeof v === 'object' && !Array.isArray(prev) && !Array.isArray(v)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Publication pushes the node has encoded for `codec` ('json', 'protobuf', 'uni_json'), as its metric counts them. */
export async function encodesOf(sb: Switchboard, codec: string): Promise<number> {
  sb.collectMetrics();
  return (await sb.metrics.publicationEncodes.get()).values.find((v) => v.labels.codec === codec)?.value ?? 0;
}
