// Two Switchboard nodes over NATS against two nodes over Redis PUB/SUB, in
// one invocation: history in Redis for both (the NATS broker appends to Redis,
// then sends over NATS). Subscribers on both nodes (raw ws, JSON protocol,
// their readers in a child process), publications through node A's HTTP API.
// Counts deliveries and the CPU time (from /proc) of the two nodes and of the
// broker processes (redis-server, nats-server), so the ratio does not depend
// on how busy the machine is. Rounds alternate redis, nats, redis, nats, ...
//   npm run build -w @switchboard/server
//   node packages/bench/scripts/nats-vs-redis.mjs [conns per node] [publications] [rounds]
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const here = dirname(fileURLToPath(import.meta.url));

if (process.argv[2] === 'clients') {
  // conns per node, then the node ports
  const n = Number(process.argv[3]);
  const ports = process.argv.slice(4).map(Number);
  let ready = 0;
  let delivered = 0;
  for (const port of ports) {
    for (let i = 0; i < n; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`);
      ws.on('open', () => ws.send('{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"bench"}}'));
      ws.on('message', (buf) => {
        const s = buf.toString();
        if (s.includes('"id":2')) {
          if (++ready === n * ports.length) process.send({ ready: true });
        }
        // one line per push; publications carry "pub"
        let at = -1;
        while ((at = s.indexOf('"pub":', at + 1)) >= 0) delivered++;
        if (s === '{}') ws.send('{}');
      });
    }
  }
  process.on('message', () => process.send({ delivered }));
} else {
  const CONNS = Number(process.argv[2] ?? 500);
  const PUBS = Number(process.argv[3] ?? 2000);
  const ROUNDS = Number(process.argv[4] ?? 2);
  const cli = resolve(here, '../../server/dist/src/cli.js');
  const dir = mkdtempSync(join(tmpdir(), 'sb-nats-bench-'));
  const procs = [];
  const cleanup = () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  process.on('SIGINT', () => process.exit(130));

  const freePort = () =>
    new Promise((r) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => r(port));
      });
    });
  const answers = (port) =>
    new Promise((r) => {
      const c = connect(port, '127.0.0.1');
      c.on('connect', () => (c.destroy(), r(true)));
      c.on('error', () => r(false));
    });
  const waitPort = async (port, what) => {
    for (let i = 0; i < 300; i++) if (await answers(port)) return;
    else await new Promise((r) => setTimeout(r, 100));
    throw new Error(`${what} did not start on ${port}`);
  };
  const cpuMs = (pid) => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, 100 ticks/s
  };
  const start = (cmd, args) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    procs.push(p);
    return p;
  };

  const redisPort = await freePort();
  const redis = start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  const natsPort = await freePort();
  const nats = spawn(process.env.NATS_SERVER ?? 'nats-server', ['-a', '127.0.0.1', '-p', String(natsPort)], { stdio: 'ignore' });
  procs.push(nats);
  await waitPort(redisPort, 'redis-server');
  await waitPort(natsPort, 'nats-server');

  const round = async (broker, k) => {
    const engine = {
      type: 'redis',
      redis: { address: `redis://127.0.0.1:${redisPort}`, prefix: `bench${k}` },
      ...(broker === 'nats' ? { broker: 'nats', nats: { url: `nats://127.0.0.1:${natsPort}`, prefix: `bench${k}` } } : {}),
    };
    const nodes = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const cfg = {
        http_server: { port, address: '127.0.0.1' },
        client: { insecure: true, queue_max_size: 10_485_760 },
        http_api: { key: 'k' },
        channel: { without_namespace: { history_size: 100, history_ttl: '60s' } },
        log: { level: 'warn' },
        engine,
      };
      const file = join(dir, `n${k}-${i}.json`);
      writeFileSync(file, JSON.stringify(cfg));
      nodes.push({ port, proc: start(process.execPath, [cli, 'serve', '--config', file]) });
    }
    for (const n of nodes) await waitPort(n.port, 'switchboard');
    const clients = fork(fileURLToPath(import.meta.url), ['clients', String(CONNS), ...nodes.map((n) => String(n.port))]);
    procs.push(clients);
    await new Promise((r) => clients.once('message', r));
    const count = () => new Promise((r) => (clients.once('message', (m) => r(m.delivered)), clients.send('count')));

    const pids = [...nodes.map((n) => n.proc.pid), broker === 'nats' ? nats.pid : redis.pid];
    if (broker === 'nats') pids.push(redis.pid); // the history appends
    const cpu0 = pids.map(cpuMs);
    const t0 = performance.now();
    const data = JSON.stringify({ x: 'y'.repeat(100) });
    const api = `http://127.0.0.1:${nodes[0].port}/api/publish`;
    let next = 0;
    const publisher = async () => {
      while (next < PUBS) {
        next++;
        const r = await fetch(api, { method: 'POST', headers: { 'x-api-key': 'k' }, body: `{"channel":"bench","data":${data}}` });
        const body = await r.json();
        if (!body.result) throw new Error(JSON.stringify(body));
      }
    };
    await Promise.all(Array.from({ length: 8 }, publisher));
    const want = PUBS * CONNS * 2;
    let got = 0;
    for (let i = 0; i < 600 && (got = await count()) < want; i++) await new Promise((r) => setTimeout(r, 100));
    const wall = (performance.now() - t0) / 1000;
    const cpu = pids.map((p, i) => cpuMs(p) - cpu0[i]);
    const nodesCpu = (cpu[0] + cpu[1]) / 1000;
    const brokerCpu = cpu.slice(2).reduce((a, b) => a + b, 0) / 1000;
    clients.kill();
    for (const n of nodes) n.proc.kill('SIGTERM');
    await Promise.all(nodes.map((n) => new Promise((r) => (n.proc.exitCode !== null ? r() : n.proc.once('exit', r)))));
    return { broker, got, want, wall, nodesCpu, brokerCpu };
  };

  const results = [];
  for (let k = 0; k < ROUNDS * 2; k++) {
    const r = await round(k % 2 === 0 ? 'redis' : 'nats', k);
    results.push(r);
    console.log(
      `${r.broker.padEnd(5)} delivered ${r.got}/${r.want} in ${r.wall.toFixed(2)} s wall: ${(r.got / r.wall).toFixed(0)} deliveries/s; ` +
        `CPU nodes ${r.nodesCpu.toFixed(2)} s (${(r.got / r.nodesCpu).toFixed(0)} deliveries per node-CPU-second), broker processes ${r.brokerCpu.toFixed(2)} s`,
    );
  }
  const sum = (b, f) => results.filter((r) => r.broker === b).reduce((a, r) => a + f(r), 0);
  const perCpu = (b) => sum(b, (r) => r.got) / sum(b, (r) => r.nodesCpu);
  const perAllCpu = (b) => sum(b, (r) => r.got) / sum(b, (r) => r.nodesCpu + r.brokerCpu);
  console.log(
    `nats/redis: ${(perCpu('nats') / perCpu('redis')).toFixed(2)}x deliveries per node-CPU-second, ` +
      `${(perAllCpu('nats') / perAllCpu('redis')).toFixed(2)}x counting the broker processes too ` +
      `(${CONNS} subscribers per node, ${PUBS} publications per round, ${ROUNDS} rounds each)`,
  );
  process.exit(0);
}
