/**
 * A nats-server of the test's own (JetStream on, its store in a temporary
 * folder) on a free port, that a test may kill and start again on the same
 * port; like OwnRedis in redis.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import type { TestContextLike } from './scope.js';
import { until } from './wait.js';

/** The nats-server binary (Debian's package `nats-server`). */
export const NATS_SERVER = process.env.SWITCHBOARD_NATS_SERVER ?? 'nats-server';

/** True when a NATS server greets on host:port (its first line is `INFO {...}`). */
export function natsAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, host);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    sock.on('error', () => done(false));
    sock.once('data', (d) => done(d.toString().startsWith('INFO ')));
  });
}

export class OwnNats {
  private proc: ChildProcess | undefined;
  private readonly store = mkdtempSync(join(tmpdir(), 'sb-nats-'));
  private constructor(readonly port: number) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(t: TestContextLike): Promise<OwnNats> {
    const n = new OwnNats(await freePort());
    t.after(async () => {
      await n.stop();
      rmSync(n.store, { recursive: true, force: true });
    });
    await n.start();
    return n;
  }

  async start(): Promise<void> {
    this.proc = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.store], { stdio: 'ignore' });
    await until(`nats-server on ${this.port}`, 5000, () => natsAnswers(this.port));
  }

  /** SIGKILL: NATS is gone, with whatever was in flight. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }
}

/** A NATS client for the test, closed when it ends. */
export async function natsClient(t: TestContextLike, url: string): Promise<NatsConnection> {
  const nc = await natsConnect({ servers: url });
  t.after(() => nc.close());
  return nc;
}

/** One JetStream API request (`$JS.API.<subject>`), its JSON answer. */
export async function jsApi(nc: NatsConnection, subject: string, body: unknown = ''): Promise<any> {
  const r = await nc.request(`$JS.API.${subject}`, body === '' ? '' : JSON.stringify(body), { timeout: 2000 });
  return r.json<any>();
}
