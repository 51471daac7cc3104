import protobuf from 'protobufjs/minimal.js';
import type WebSocket from 'ws';
import type { BenchPayload } from '../types.js';
import type { ChannelState } from './stats.js';
import { WsClient } from './ws-client.js';

/*
 * Centrifugo client protocol v2 in its Protobuf encoding, as centrifuge-js's
 * Protobuf build speaks it on the wire: subprotocol `centrifuge-protobuf`,
 * binary frames of varint-length-delimited Command / Reply messages. Only the
 * fields the benchmark reads and writes, with protobufjs's Reader/Writer
 * (field numbers of centrifugal/protocol client.proto). Offsets are read as
 * 32-bit varints: a benchmark never gets near 2^32 publications per channel.
 */

const { Reader, Writer } = protobuf;
type Reader = protobuf.Reader;

const LEN = 2;
const VARINT = 0;
const tag = (field: number, wire: number): number => (field << 3) | wire;
const PONG = Buffer.from([0]); // an empty Command, delimited

interface SubscribeResult {
  epoch: string;
  offset: number;
  recovered: boolean;
  wasRecovering: boolean;
  publications: { data?: BenchPayload; offset: number }[];
}

interface Reply {
  id: number;
  errorCode?: number;
  subscribe?: SubscribeResult;
}

function payload(bytes: Uint8Array): BenchPayload | undefined {
  if (bytes.length === 0) return undefined;
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString()) as BenchPayload;
}

/** Publication { data = 4; offset = 6 }. */
function readPublication(r: Reader, end: number): { data?: BenchPayload; offset: number } {
  let data: BenchPayload | undefined;
  let offset = 0;
  while (r.pos < end) {
    const t = r.uint32();
    if (t === tag(4, LEN)) data = payload(r.bytes());
    else if (t === tag(6, VARINT)) offset = r.uint32();
    else r.skipType(t & 7);
  }
  return { data, offset };
}

function readSubscribeResult(r: Reader, end: number): SubscribeResult {
  const s: SubscribeResult = { epoch: '', offset: 0, recovered: false, wasRecovering: false, publications: [] };
  while (r.pos < end) {
    const t = r.uint32();
    if (t === tag(6, LEN)) s.epoch = r.string();
    else if (t === tag(7, LEN)) {
      const len = r.uint32();
      s.publications.push(readPublication(r, r.pos + len));
    } else if (t === tag(8, VARINT)) s.recovered = r.bool();
    else if (t === tag(9, VARINT)) s.offset = r.uint32();
    else if (t === tag(12, VARINT)) s.wasRecovering = r.bool();
    else r.skipType(t & 7);
  }
  return s;
}

/** Speaks Centrifugo client protocol v2 (Protobuf), the way centrifuge-js's Protobuf build does on the wire. */
export class ProtobufSwitchboardClient extends WsClient {
  private nextId = 1;
  private pending = new Map<number, (r: Reply) => void>();
  private hadSession = false;

  protected override subprotocols(): string[] {
    return ['centrifuge-protobuf'];
  }

  private call(ws: WebSocket, cmds: { write: (w: protobuf.Writer) => void; onReply: (r: Reply) => void }[]): void {
    const w = Writer.create();
    for (const { write, onReply } of cmds) {
      const id = this.nextId++;
      this.pending.set(id, onReply);
      w.fork();
      w.uint32(tag(1, VARINT)).uint32(id);
      write(w);
      w.ldelim();
    }
    ws.send(w.finish());
  }

  /** One frame: replies and pushes, each length-delimited. */
  private onFrame(ws: WebSocket, buf: Buffer): void {
    const r = Reader.create(buf);
    while (r.pos < r.len) {
      const len = r.uint32();
      if (len === 0) {
        ws.send(PONG); // the server's ping is an empty Reply
        continue;
      }
      const end = r.pos + len;
      const reply: Reply = { id: 0 };
      while (r.pos < end) {
        const t = r.uint32();
        if (t === tag(1, VARINT)) reply.id = r.uint32();
        else if (t === tag(2, LEN)) {
          const e = r.uint32() + r.pos;
          reply.errorCode = -1;
          while (r.pos < e) {
            const et = r.uint32();
            if (et === tag(1, VARINT)) reply.errorCode = r.uint32();
            else r.skipType(et & 7);
          }
        } else if (t === tag(4, LEN)) this.onPush(r, r.uint32() + r.pos);
        else if (t === tag(6, LEN)) reply.subscribe = readSubscribeResult(r, r.uint32() + r.pos);
        else r.skipType(t & 7);
      }
      if (reply.id !== 0) {
        const h = this.pending.get(reply.id);
        if (h) {
          this.pending.delete(reply.id);
          h(reply);
        }
      }
    }
  }

  /** Push { channel = 2; pub = 4 }: only publications are counted. */
  private onPush(r: Reader, end: number): void {
    let channel: string | undefined;
    let pub: { data?: BenchPayload; offset: number } | undefined;
    while (r.pos < end) {
      const t = r.uint32();
      if (t === tag(2, LEN)) channel = r.string();
      else if (t === tag(4, LEN)) pub = readPublication(r, r.uint32() + r.pos);
      else r.skipType(t & 7);
    }
    if (pub === undefined || channel === undefined) return;
    const st = this.state(channel);
    if (!st) return;
    if (pub.offset > 0) st.offset = pub.offset;
    this.o.stats.deliver(st, pub.data);
  }

  private subscribed(st: ChannelState, s: SubscribeResult): void {
    if (s.wasRecovering && !s.recovered) this.o.stats.notRecovered++;
    for (const p of s.publications) {
      if (p.offset > 0) st.offset = p.offset;
      this.o.stats.deliver(st, p.data);
    }
    if (s.epoch !== '') st.epoch = s.epoch;
    if (s.offset > st.offset) st.offset = s.offset;
  }

  protected override onOpen(ws: WebSocket, resolve: () => void, reject: (e: Error) => void): void {
    this.pending.clear();
    ws.on('message', (raw: Buffer) => this.onFrame(ws, raw));
    const fail = (e: Error): void => {
      reject(e);
      ws.terminate();
    };
    const recovering = this.hadSession;
    // connect and subscribe in one frame, as centrifuge-js sends them
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
        write: (w) => {
          // connect { token }
          w.uint32(tag(4, LEN)).fork();
          if (this.o.token) w.uint32(tag(1, LEN)).string(this.o.token);
          w.ldelim();
        },
        onReply: (r) => {
          if (r.errorCode !== undefined) return fail(new Error(`connect error ${r.errorCode}`));
          connected = true;
          done();
        },
      },
      ...this.states.map((st) => ({
        write: (w: protobuf.Writer) => {
          w.uint32(tag(5, LEN)).fork();
          w.uint32(tag(1, LEN)).string(st.name);
          if (recovering && st.epoch !== '') {
            w.uint32(tag(3, VARINT)).bool(true);
            w.uint32(tag(6, LEN)).string(st.epoch);
            w.uint32(tag(7, VARINT)).uint64(st.offset);
          }
          if (this.o.recoverable) w.uint32(tag(10, VARINT)).bool(true);
          w.ldelim();
        },
        onReply: (sr: Reply) => {
          if (sr.errorCode !== undefined) return fail(new Error(`subscribe error ${sr.errorCode}`));
          this.subscribed(st, sr.subscribe ?? { epoch: '', offset: 0, recovered: false, wasRecovering: false, publications: [] });
          left--;
          done();
        },
      })),
    ]);
  }
}
