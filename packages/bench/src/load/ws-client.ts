import WebSocket from 'ws';
import type { ChannelState, DeliveryStats } from './stats.js';

export interface ClientOptions {
  url: string;
  localAddress: string;
  /**
   * Local port to bind (with localAddress), chosen by the load generator: with
   * only an address, the kernel searches its bind table for a free port on
   * every connect, and past ~50k connections over 8 addresses that search was
   * most of the machine's CPU (`inet_bind2_bucket_match_addr_any`,
   * `inet_bhash2_conflict` in `perf record -a` of a 100k storm). Undefined:
   * the kernel picks. A port found taken (another listener) is given up for
   * the kernel's choice, at once, for this client.
   */
  localPort?: number;
  channels: string[];
  stats: DeliveryStats;
  recoverable: boolean;
  transports?: string[];
  /** Connection token (HS256 JWT) for the Switchboard clients. */
  token?: string;
}

/** A benchmark client: one connection subscribed to a few channels, counting what it receives. */
export interface BenchClient {
  readonly states: ChannelState[];
  /** Connect and subscribe; on a second call, reconnect (and recover where the protocol can). */
  open(timeoutMs: number): Promise<void>;
  /** Abrupt client-side drop, not counted as an unexpected close. */
  drop(): void;
  isOpen(): boolean;
  close(): void;
}

export function statesFor(channels: string[]): ChannelState[] {
  return channels.map((name) => ({ name, last: 0, offset: 0, epoch: '' }));
}

export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      onTimeout();
      reject(new Error('timeout'));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** Shared by the two plain-WebSocket clients: socket lifecycle and close accounting. */
export abstract class WsClient implements BenchClient {
  readonly states: ChannelState[];
  protected ws: WebSocket | undefined;
  protected intentional = false;
  protected ready = false;

  constructor(protected readonly o: ClientOptions) {
    this.states = statesFor(o.channels);
  }

  protected state(channel: string): ChannelState | undefined {
    const s = this.states;
    for (let i = 0; i < s.length; i++) if (s[i]!.name === channel) return s[i];
    return undefined;
  }

  open(timeoutMs: number): Promise<void> {
    if (this.o.localPort === undefined) return this.openOnce(timeoutMs);
    return this.openOnce(timeoutMs).catch((e: Error & { code?: string }) => {
      if (e.code !== 'EADDRINUSE' && e.code !== 'EADDRNOTAVAIL') throw e;
      // the chosen port is taken (a listener, a socket of another process): the kernel chooses from now on
      this.o.localPort = undefined;
      return this.openOnce(timeoutMs);
    });
  }

  private openOnce(timeoutMs: number): Promise<void> {
    this.intentional = false;
    this.ready = false;
    const ws = new WebSocket(this.o.url, this.subprotocols(), {
      localAddress: this.o.localAddress,
      localPort: this.o.localPort,
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
    } as WebSocket.ClientOptions);
    this.ws = ws;
    const p = new Promise<void>((resolve, reject) => {
      ws.once('open', () => this.onOpen(ws, resolve, reject));
      ws.once('error', (e) => reject(e));
      ws.once('close', (code) => {
        if (this.ws !== ws) return; // an old socket of this client, already replaced
        if (!this.ready) reject(new Error(`closed ${code} before ready`));
        else if (!this.intentional) this.o.stats.closed(code);
        this.ready = false;
      });
    });
    ws.on('error', () => {}); // errors after open surface as close
    return withTimeout(p, timeoutMs, () => ws.terminate());
  }

  /** WebSocket subprotocols to ask for (the Protobuf encoding asks for `centrifuge-protobuf`). */
  protected subprotocols(): string[] {
    return [];
  }

  protected abstract onOpen(ws: WebSocket, resolve: () => void, reject: (e: Error) => void): void;

  drop(): void {
    this.intentional = true;
    this.ready = false;
    this.ws?.terminate();
  }
  isOpen(): boolean {
    return this.ready && this.ws?.readyState === WebSocket.OPEN;
  }
  close(): void {
    this.intentional = true;
    this.ws?.terminate();
  }
}
