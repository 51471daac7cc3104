#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import cluster from 'node:cluster';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { availableParallelism } from 'node:os';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { ConfigError, loadConfig, parseDuration, type Config } from './config/load.js';
import type { Engine } from './engine/types.js';
import { createLogger } from './observability/logger.js';
import { generateTypes } from './typegen.js';
import { VERSION } from './version.js';

const HELP = `switchboard ${VERSION} — real-time messaging server (Centrifugo protocol compatible)

Usage:
  switchboard serve [options]          run the server
  switchboard check-config [FILE] [options]   validate the configuration (FILE = --config FILE) and exit
  switchboard token --user ID [--ttl 1h] [--channels a,b] [--info JSON] [options]
                                       mint a connection JWT (HMAC) for development
  switchboard types [--out FILE] [options]
                                       TypeScript types for typed channels and RPC
                                       (namespace publication_schema, rpc.schemas)
  switchboard --version | --help

Options:
  -c, --config FILE        JSON or YAML config (default: ./switchboard.json if present)
  -p, --port N             http_server.port (default 8000)
      --address ADDR       http_server.address
      --log-level LEVEL    log.level (trace|debug|info|warn|error|fatal|none)
      --engine TYPE        engine.type (memory|redis)
      --redis-address URL  engine.redis.address
      --api-key KEY        http_api.key
      --token-hmac-secret  client.token.hmac_secret_key
      --allow-anonymous    client.allow_anonymous_connect_without_token
      --workers N|auto     run N worker processes, auto = one per core (node:cluster; needs the redis engine)
      --set PATH=VALUE     any config key, e.g. --set client.channel_limit=64

Environment: SWITCHBOARD_<PATH> with "_" between keys, e.g.
  SWITCHBOARD_HTTP_SERVER_PORT=9000 SWITCHBOARD_CLIENT_TOKEN_HMAC_SECRET_KEY=...
`;

interface Flags {
  config?: string;
  port?: string;
  address?: string;
  'log-level'?: string;
  engine?: string;
  'redis-address'?: string;
  'api-key'?: string;
  'token-hmac-secret'?: string;
  'allow-anonymous'?: boolean;
  out?: string;
  workers?: string;
  set?: string[];
  user?: string;
  ttl?: string;
  channels?: string;
  info?: string;
  help?: boolean;
  version?: boolean;
}

/** A command line that cannot mean anything: told with the usage, exit 2. */
class UsageError extends Error {}

function parse(argv: string[]): { command: string; flags: Flags } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      address: { type: 'string' },
      'log-level': { type: 'string' },
      engine: { type: 'string' },
      'redis-address': { type: 'string' },
      'api-key': { type: 'string' },
      'token-hmac-secret': { type: 'string' },
      'allow-anonymous': { type: 'boolean' },
      out: { type: 'string', short: 'o' },
      workers: { type: 'string' },
      set: { type: 'string', multiple: true },
      user: { type: 'string', short: 'u' },
      ttl: { type: 'string' },
      channels: { type: 'string' },
      info: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  const command = positionals[0] ?? (values.version ? 'version' : 'help');
  const rest = positionals.slice(1);
  // `switchboard check-config FILE` (and serve/types): a path where --config was meant. Never ignored silently.
  if (rest.length === 1 && values.config === undefined && ['serve', 'check-config', 'types'].includes(command)) {
    values.config = rest[0];
  } else if (rest.length > 0) {
    throw new UsageError(
      `unexpected argument${rest.length > 1 ? 's' : ''} ${rest.map((a) => JSON.stringify(a)).join(' ')} (see switchboard --help)`,
    );
  }
  return { command, flags: values as Flags };
}

function overridesOf(f: Flags): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (f.port !== undefined) o['http_server.port'] = f.port;
  if (f.address !== undefined) o['http_server.address'] = f.address;
  if (f['log-level'] !== undefined) o['log.level'] = f['log-level'];
  if (f.engine !== undefined) o['engine.type'] = f.engine;
  if (f['redis-address'] !== undefined)
    o['engine.redis.address'] = f['redis-address'].includes(',') ? f['redis-address'].split(',') : f['redis-address'];
  if (f['api-key'] !== undefined) o['http_api.key'] = f['api-key'];
  if (f['token-hmac-secret'] !== undefined) o['client.token.hmac_secret_key'] = f['token-hmac-secret'];
  if (f['allow-anonymous']) o['client.allow_anonymous_connect_without_token'] = true;
  if (f.workers !== undefined) o['workers'] = f.workers === 'auto' ? availableParallelism() : f.workers;
  for (const kv of f.set ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new ConfigError([`--set ${kv}: expected PATH=VALUE`]);
    const raw = kv.slice(i + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      /* a plain string */
    }
    o[kv.slice(0, i)] = value;
  }
  return o;
}

function load(f: Flags): { config: Config; warnings: string[]; file?: string } {
  const file = f.config ?? (existsSync('switchboard.json') ? 'switchboard.json' : undefined);
  const r = loadConfig({ file, env: process.env, overrides: overridesOf(f) });
  return { ...r, file };
}

async function createEngine(config: Config): Promise<Engine | undefined> {
  if (config.engine.type !== 'redis') return undefined;
  // Loaded only when asked for, so the memory default needs no Redis client.
  const modPath = './engine/redis/engine.js';
  const mod = (await import(modPath)) as { RedisEngine: new (c: Config) => Engine };
  return new mod.RedisEngine(config);
}

/** Origins a config-less dev server accepts: any port of the loopback names. */
const DEV_ORIGINS = ['http://localhost:*', 'http://127.0.0.1:*', 'http://[::1]:*'];

async function serve(f: Flags): Promise<void> {
  const inherited = cluster.isWorker ? process.env.SWITCHBOARD_WORKER_CONFIG : undefined;
  const { config, warnings, file } = inherited ? { config: JSON.parse(inherited) as Config, warnings: [], file: undefined } : load(f);
  if (inherited) config.workers = 0;
  const log = createLogger(config.log.level);
  for (const w of warnings) log.warn(w);
  const generated: string[] = [];
  const devNotes: string[] = [];
  const t = config.client.token;
  if (!t.hmac_secret_key && !t.rsa_public_key && !t.ecdsa_public_key && !t.ed25519_public_key && !t.jwks_public_endpoint) {
    t.hmac_secret_key = randomBytes(24).toString('base64url');
    generated.push(`client.token.hmac_secret_key = ${t.hmac_secret_key}`);
  }
  if (!config.http_api.key && !config.http_api.insecure) {
    config.http_api.key = randomBytes(24).toString('base64url');
    generated.push(`http_api.key = ${config.http_api.key}`);
  }
  // Zero-config dev mode (no file, no secrets, no channel rules): bare
  // channels are open to connected clients so `npm start` plus the printed
  // token is enough to try every feature. Any config file turns this off.
  const ns = config.channel.without_namespace;
  const devChannels =
    !inherited &&
    file === undefined &&
    generated.some((g) => g.startsWith('client.token')) &&
    config.channel.namespaces.length === 0 &&
    // untouched: exactly the schema's defaults (an env var or --set that changes any option turns dev channels off)
    isDeepStrictEqual(ns, loadConfig({ object: {} }).config.channel.without_namespace);
  if (devChannels) {
    Object.assign(ns, {
      allow_subscribe_for_client: true,
      allow_publish_for_subscriber: true,
      allow_history_for_subscriber: true,
      allow_presence_for_subscriber: true,
      presence: true,
      join_leave: true,
      history_size: 100,
      history_ttl: 300_000,
      force_recovery: true,
    });
    generated.push('channel.without_namespace: bare channels open to connected clients (subscribe, publish, history, presence, recovery)');
  }
  // Dev mode: pages of a dev server on another localhost port (Vite, webpack…) may connect.
  // A config file keeps the same-origin default.
  if (!inherited && file === undefined && config.client.allowed_origins.length === 0) {
    config.client.allowed_origins = [...DEV_ORIGINS];
    devNotes.push(
      `Dev mode (no config file): WebSocket pages from ${DEV_ORIGINS.join(', ')} may connect; ` +
        `set client.allowed_origins (config, SWITCHBOARD_CLIENT_ALLOWED_ORIGINS or --set) to allow other origins.`,
    );
  }
  if (config.workers > 1) {
    if (generated.length > 0)
      process.stdout.write(`\nNo secrets configured: generated for this run only:\n  ${generated.join('\n  ')}\n\n`);
    for (const n of devNotes) process.stdout.write(n + '\n');
    const { runCluster } = await import('./cluster.js');
    await runCluster(config, log);
    return;
  }
  const engine = await createEngine(config);
  // Loaded only for `serve`: --version, token and check-config start fast.
  const { startServer } = await import('./server.js');
  const server = await startServer({ resolvedConfig: config, logger: log, engine });
  log.info(
    { port: server.port, engine: server.switchboard.engine.name, version: VERSION, config: file ?? null, node: server.switchboard.name },
    'switchboard listening',
  );
  if (generated.length > 0) {
    const devToken = await new SignJWT({ sub: 'dev' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime('24h')
      .sign(new TextEncoder().encode(config.client.token.hmac_secret_key));
    process.stdout.write(
      `\nNo secrets configured: generated for this run only (set them in a config file for anything real):\n  ${generated.join('\n  ')}\n` +
        `  a connection token for user "dev" (24h): ${devToken}\n` +
        `  WebSocket: ws://localhost:${server.port}/connection/websocket   API: http://localhost:${server.port}/api\n\n`,
    );
  }
  for (const n of devNotes) process.stdout.write(n + '\n');
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining connections');
    const force = setTimeout(() => {
      log.error('shutdown timed out');
      process.exit(1);
    }, config.shutdown.timeout + 5000);
    force.unref();
    server.close().then(
      () => {
        log.info('shutdown complete');
        process.exit(0);
      },
      (e: unknown) => {
        log.error({ err: String(e) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function token(f: Flags): Promise<void> {
  const { config } = load(f);
  const secret = config.client.token.hmac_secret_key;
  if (!secret)
    throw new ConfigError(['client.token.hmac_secret_key: needed to mint a token (set it in the config, env or --token-hmac-secret)']);
  if (f.user === undefined) throw new ConfigError(['token: --user ID is required']);
  const claims: Record<string, unknown> = { sub: f.user };
  if (f.channels) claims.channels = f.channels.split(',').filter(Boolean);
  if (f.info) {
    try {
      claims.info = JSON.parse(f.info);
    } catch {
      throw new ConfigError(['token: --info must be JSON']);
    }
  }
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  const ttlMs = parseDuration(f.ttl ?? '1h', '--ttl');
  if (ttlMs > 0) jwt.setExpirationTime(Math.floor((Date.now() + ttlMs) / 1000));
  process.stdout.write((await jwt.sign(new TextEncoder().encode(secret))) + '\n');
}

async function main(): Promise<void> {
  const { command, flags } = parse(process.argv.slice(2));
  if (flags.help || command === 'help') {
    process.stdout.write(HELP);
    return;
  }
  switch (command) {
    case 'version':
      process.stdout.write(VERSION + '\n');
      return;
    case 'serve':
      return serve(flags);
    case 'check-config': {
      const { warnings, file } = load(flags);
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(`config ${file ?? '(defaults)'} is valid\n`);
      return;
    }
    case 'token':
      return token(flags);
    case 'types': {
      const { config, warnings, file } = load(flags);
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      const ts = generateTypes(config, file ?? 'the default configuration');
      if (flags.out) {
        // `--out src/generated/types.ts` in a fresh checkout: the folder is part of what was asked for.
        mkdirSync(dirname(flags.out), { recursive: true });
        writeFileSync(flags.out, ts);
      } else process.stdout.write(ts);
      return;
    }
    default:
      process.stderr.write(`unknown command "${command}"\n\n${HELP}`);
      process.exitCode = 2;
  }
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError) {
    for (const w of e.warnings) process.stderr.write(`warning: ${w}\n`);
    process.stderr.write(e.message + '\n');
    process.exitCode = 1;
    return;
  }
  if (e instanceof UsageError || (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) {
    process.stderr.write(`${e.message}\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`switchboard: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
