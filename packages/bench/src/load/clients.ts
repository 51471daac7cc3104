import WebSocket from 'ws';
import { io, type Socket } from 'socket.io-client';
import type { BenchPayload, ClientKind } from '../types.js';
import { ProtobufSwitchboardClient } from './protobuf-client.js';
import type { ChannelState } from './stats.js';
import { WsClient, statesFor, withTimeout, type BenchClient, type ClientOptions } from './ws-client.js';

export type { BenchClient, ClientOptions } from './ws-client.js';

export function createClient(kind: ClientKind, o: ClientOptions): BenchClient {
  switch (kind) {
    case 'raw':
      return new RawClient(o);
    case 'switchboard':
      return new SwitchboardClient(o);
    case 'switchboard-protobuf':
      return new ProtobufSwitchboardClient(o);
    case 'socketio':
      return new SocketIoClient(o);
  }
}

/** Speaks the raw peer's tiny protocol: `{"subscribe":[…]}` then `{"channel","data"}` messages. */
class RawClient extends WsClient {
  protected onOpen(ws: WebSocket, resolve: () => void): void {
    ws.on('message', (raw: Buffer) => {
      const msg = JSON.parse(raw.toString()) as { channel?: string; data?: BenchPayload; subscribed?: number };
      if (msg.channel !== undefined) {
        const st = this.state(msg.channel);
        if (st) this.o.stats.deliver(st, msg.data);
      } else if (msg.subscribed !== undefined) {
        this.ready = true;
        resolve();
      }
    });
    ws.send(JSON.stringify({ subscribe: this.o.channels }));
  }
}

interface SbReply {
  id?: number;
  error?: { code: number; message: string };
  connect?: { client?: string };
  subscribe?: {
    epoch?: string;
    offset?: number;
    recovered?: boolean;
    was_recovering?: boolean;
    publications?: { data?: BenchPayload; offset?: number }[];
  };
  push?: {
    channel?: string;
    pub?: { data?: BenchPayload; offset?: number };
    disconnect?: { code: number; reason: string };
  };
}

/** Speaks Centrifugo client protocol v2 (JSON), the way centrifuge-js does on the wire. */
class SwitchboardClient extends WsClient {
  private nextId = 1;
  /**
   * Reply handlers run synchronously, in frame order: a subscribe reply's
   * recovered publications must be counted before the live pushes that follow
   * it in the same frame.
   */
  private pending = new Map<number, (r: SbReply) => void>();
  private hadSession = false;

  private call(ws: WebSocket, cmds: { cmd: Record<string, unknown>; onReply: (r: SbReply) => void }[]): void {
    const lines: string[] = [];
    for (const { cmd, onReply } of cmds) {
      const id = this.nextId++;
      this.pending.set(id, onReply);
      lines.push(JSON.stringify({ id, ...cmd }));
    }
    ws.send(lines.join('\n'));
  }

  private onLine(ws: WebSocket, line: string): void {
    if (line === '{}') {
      ws.send('{}'); // ping → pong
      return;
    }
    const msg = JSON.parse(line) as SbReply;
    if (msg.id !== undefined && msg.id !== 0) {
      const r = this.pending.get(msg.id);
      if (r) {
        this.pending.delete(msg.id);
        r(msg);
      }
      return;
    }
    const push = msg.push;
    if (push?.pub && push.channel !== undefined) {
      const st = this.state(push.channel);
      if (st) {
        if (push.pub.offset !== undefined) st.offset = push.pub.offset;
        this.o.stats.deliver(st, push.pub.data);
      }
    }
  }

  private subscribed(st: ChannelState, r: SbReply): void {
    const sub = r.subscribe ?? {};
    if (sub.was_recovering && !sub.recovered) this.o.stats.notRecovered++;
    for (const p of sub.publications ?? []) {
      if (p.offset !== undefined) st.offset = p.offset;
      this.o.stats.deliver(st, p.data);
    }
    if (sub.epoch !== undefined) st.epoch = sub.epoch;
    if (sub.offset !== undefined && sub.offset > st.offset) st.offset = sub.offset;
  }

  protected onOpen(ws: WebSocket, resolve: () => void, reject: (e: Error) => void): void {
    this.pending.clear();
    ws.on('message', (raw: Buffer) => {
      const text = raw.toString();
      if (text.indexOf('\n') < 0) this.onLine(ws, text);
      else for (const line of text.split('\n')) if (line.length > 0) this.onLine(ws, line);
    });
    const fail = (e: Error): void => {
      reject(e);
      ws.terminate();
    };
    const recovering = this.hadSession;
    // As centrifuge-js does for subscriptions made before connect(): connect and
    // subscribe commands in one frame (the server handles them in order).
    let connected = false;
    let left = this.states.length;
    const done = (): void => {
      if (!connected || left > 0) return;
      this.hadSession = true;
      this.ready = true;
      resolve();
    };
    this.call(ws, [
      {
        cmd: { connect: this.o.token ? { token: this.o.token } : {} },
        onReply: (r) => {
          if (r.error) return fail(new Error(`connect error ${r.error.code}`));
          connected = true;
          done();
        },
      },
      ...this.states.map((st) => {
        const sub: Record<string, unknown> = { channel: st.name };
        if (this.o.recoverable) sub.recoverable = true;
        if (recovering && st.epoch !== '') {
          sub.recover = true;
          sub.offset = st.offset;
          sub.epoch = st.epoch;
        }
        return {
          cmd: { subscribe: sub },
          onReply: (sr: SbReply) => {
            if (sr.error) return fail(new Error(`subscribe error ${sr.error.code}`));
            this.subscribed(st, sr);
            left--;
            done();
          },
        };
      }),
    ]);
  }
}

/** socket.io-client, one Manager per connection, no auto-reconnect (the harness reconnects). */
class SocketIoClient implements BenchClient {
  readonly states: ChannelState[];
  private socket: Socket | undefined;
  private intentional = false;
  private ready = false;

  constructor(private readonly o: ClientOptions) {
    this.states = statesFor(o.channels);
  }

  open(timeoutMs: number): Promise<void> {
    this.intentional = false;
    this.ready = false;
    const opts: Record<string, unknown> = {
      forceNew: true,
      reconnection: false,
      timeout: timeoutMs,
      localAddress: this.o.localAddress,
      perMessageDeflate: false,
    };
    if (this.o.transports) opts.transports = this.o.transports;
    const socket = io(this.o.url, opts);
    this.socket = socket;
    socket.on('pub', (channel: string, data: BenchPayload) => {
      for (const st of this.states) if (st.name === channel) this.o.stats.deliver(st, data);
    });
    socket.on('disconnect', (reason) => {
      if (this.ready && !this.intentional && this.socket === socket) this.o.stats.closed(reasonCode(reason));
      this.ready = false;
    });
    const p = new Promise<void>((resolve, reject) => {
      socket.once('connect_error', (e) => reject(e));
      socket.once('connect', () => {
        socket
          .timeout(timeoutMs)
          .emitWithAck('subscribe', this.o.channels)
          .then(() => {
            this.ready = true;
            resolve();
          }, reject);
      });
    });
    return withTimeout(p, timeoutMs, () => socket.disconnect());
  }

  drop(): void {
    this.intentional = true;
    this.ready = false;
    this.socket?.disconnect();
  }
  isOpen(): boolean {
    return this.ready && this.socket?.connected === true;
  }
  close(): void {
    this.drop();
  }
}

/** socket.io gives reasons, not codes; map them to a few numbers for the report. */
function reasonCode(reason: string): number {
  switch (reason) {
    case 'io server disconnect':
      return 4000;
    case 'ping timeout':
      return 4001;
    case 'transport close':
      return 4002;
    case 'transport error':
      return 4003;
    default:
      return 4999;
  }
}
