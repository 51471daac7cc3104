import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { ConfigSchema, DURATION, type RawConfig } from './schema.js';

/** RawConfig with every duration resolved to milliseconds. */
export type Config = Resolve<RawConfig>;
type Resolve<T> = [T] extends [string | number]
  ? [string] extends [T]
    ? [number] extends [T]
      ? number
      : T
    : T
  : T extends readonly (infer U)[]
    ? Resolve<U>[]
    : T extends object
      ? { -readonly [K in keyof T]: Resolve<T[K]> }
      : T;
export type NamespaceConfig = Config['channel']['without_namespace'] & { name?: string };

export class ConfigError extends Error {
  /** Unknown-key warnings found along the way (shown with the errors: a typo is often the cause). */
  warnings: string[] = [];
  constructor(readonly problems: string[]) {
    super('invalid configuration:\n  ' + problems.join('\n  '));
    this.name = 'ConfigError';
  }
}

export interface LoadResult {
  config: Config;
  warnings: string[];
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Already-parsed overrides (e.g. from CLI flags), dotted paths → values. */
  overrides?: Record<string, unknown>;
  /** An in-process config object (embedding). */
  object?: unknown;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(v: string | number, path = 'duration'): number {
  if (typeof v === 'number') return Math.round(v * 1000);
  let total = 0;
  let rest = v.trim();
  if (rest === '' || rest === '0') return 0;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) throw new ConfigError([`${path}: "${v}" is not a duration (like "25s", "500ms", "1m30s")`]);
    total += Number(m[1]) * UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** Loads, merges (defaults < file < object < env < overrides), validates. */
export function loadConfig(opts: LoadOptions = {}): LoadResult {
  const warnings: string[] = [];
  let data: Record<string, unknown> = {};
  if (opts.file) data = deepMerge(data, readConfigFile(opts.file));
  if (opts.object !== undefined) data = deepMerge(data, opts.object as Record<string, unknown>);
  if (opts.env) data = deepMerge(data, fromEnv(opts.env, warnings));
  for (const [path, value] of Object.entries(opts.overrides ?? {})) setPath(data, path.split('.'), value);
  try {
    return { config: validateConfig(data, warnings), warnings };
  } catch (e) {
    if (e instanceof ConfigError) e.warnings = warnings;
    throw e;
  }
}

export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read config file ${file}: ${(e as Error).message}`]);
  }
  const ext = extname(file).toLowerCase();
  try {
    const parsed: unknown = ext === '.yaml' || ext === '.yml' ? parseYaml(text) : JSON.parse(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('top level must be an object');
    return parsed as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError([`cannot parse config file ${file}: ${(e as Error).message}`]);
  }
}

function validateConfig(input: Record<string, unknown>, warnings: string[]): Config {
  const data = structuredClone(input);
  // Unknown keys are warned about and dropped; everything else must be right.
  for (const err of Value.Errors(ConfigSchema, data)) {
    // The error's path is the unknown key itself (its value is the key's value, not the parent object).
    if (err.type === ValueErrorType.ObjectAdditionalProperties) warnings.push(`unknown config key ${dotted(err.path)} (ignored)`);
  }
  const cleaned = Value.Clean(ConfigSchema, data) as Record<string, unknown>;
  const withDefaults = Value.Default(ConfigSchema, cleaned);
  const converted = Value.Convert(ConfigSchema, withDefaults);
  const problems: string[] = [];
  for (const err of Value.Errors(ConfigSchema, converted)) {
    problems.push(
      `${dotted(err.path) || '(root)'}: ${expectation(err.schema, err.message)}${err.value !== undefined ? ` (got ${JSON.stringify(err.value)})` : ''}`,
    );
  }
  // Durations are checked in the same pass, so every bad key path is reported at once.
  const raw = converted as RawConfig;
  resolveDurations(ConfigSchema, raw as unknown as Record<string, unknown>, '', problems);
  if (problems.length > 0) throw new ConfigError(dedupe(problems));
  const config = raw as unknown as Config;
  checkSemantics(config, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  warnSwitchedOffProxies(config, warnings);
  if (config.client.insecure)
    warnings.push(
      'INSECURE: client.insecure is on: connections need no token and every client may subscribe, publish, ' +
        'read presence and history in every channel. For demos and tests only, never in production.',
    );
  return config;
}

/**
 * A proxy endpoint with its switch left off is valid (Centrifugo accepts it)
 * but is never called, and the symptom (101 or 103 on the client) points
 * nowhere near the config: name the switch.
 */
function warnSwitchedOffProxies(c: Config, warnings: string[]): void {
  for (const kind of ['connect', 'refresh'] as const) {
    const p = c.client.proxy[kind];
    if (p.endpoint && !p.enabled)
      warnings.push(`client.proxy.${kind}.endpoint is set but client.proxy.${kind}.enabled is false: the ${kind} proxy is never called`);
  }
  const namespaces = [c.channel.without_namespace, ...c.channel.namespaces];
  for (const kind of ['subscribe', 'publish', 'sub_refresh'] as const) {
    const flag = `${kind}_proxy_enabled` as const;
    if (c.channel.proxy[kind].endpoint && !namespaces.some((ns) => ns[flag]))
      warnings.push(
        `channel.proxy.${kind}.endpoint is set but no namespace sets ${flag} (channel.without_namespace or channel.namespaces): the ${kind} proxy is never called`,
      );
  }
  if (c.rpc.proxy.endpoint && !c.rpc.without_namespace.proxy_enabled && !c.rpc.namespaces.some((ns) => ns.proxy_enabled))
    warnings.push(
      'rpc.proxy.endpoint is set but no RPC namespace sets proxy_enabled (rpc.without_namespace or rpc.namespaces): the rpc proxy is never called',
    );
}

/** A shared poll namespace cannot work without the key that checks track signatures and the backend it polls. */
function checkSharedPoll(c: Config, problems: string[]): void {
  const all = [
    ['channel.without_namespace', c.channel.without_namespace] as const,
    ...c.channel.namespaces.map((ns, i) => [`channel.namespaces.${i}`, ns] as const),
  ];
  for (const [path, ns] of all) {
    if (ns.subscription_type !== 'shared_poll') continue;
    if (!c.shared_poll.hmac_secret_key) problems.push(`${path}.subscription_type: shared_poll needs shared_poll.hmac_secret_key`);
    if (!c.channel.proxy.shared_poll_refresh.endpoint)
      problems.push(`${path}.subscription_type: shared_poll needs channel.proxy.shared_poll_refresh.endpoint`);
  }
}

function checkSemantics(c: Config, problems: string[]): void {
  const seen = new Set<string>();
  c.channel.namespaces.forEach((ns, i) => {
    if (seen.has(ns.name)) problems.push(`channel.namespaces.${i}.name: duplicate namespace "${ns.name}"`);
    seen.add(ns.name);
  });
  const all: Array<[string, { channel_regex: string }]> = [
    ['channel.without_namespace', c.channel.without_namespace],
    ...c.channel.namespaces.map((ns, i) => [`channel.namespaces.${i}`, ns] as [string, { channel_regex: string }]),
  ];
  for (const [path, ns] of all) {
    if (ns.channel_regex) {
      try {
        new RegExp(ns.channel_regex);
      } catch (e) {
        problems.push(`${path}.channel_regex: ${(e as Error).message}`);
      }
    }
  }
  checkSharedPoll(c, problems);
  if (c.client.pong_timeout >= c.client.ping_interval && c.client.ping_interval > 0) {
    problems.push('client.pong_timeout: must be shorter than client.ping_interval');
  }
  checkBroker(c, problems);
  const hookNames = new Set<string>();
  c.webhooks.endpoints.forEach((e, i) => {
    if (!e.secret && !c.webhooks.secret)
      problems.push(`webhooks.endpoints.${i}.secret: needed to sign deliveries (or set webhooks.secret)`);
    if (hookNames.has(e.name)) problems.push(`webhooks.endpoints.${i}.name: duplicate endpoint name "${e.name}"`);
    hookNames.add(e.name);
    if (!/^https?:\/\//.test(e.url)) problems.push(`webhooks.endpoints.${i}.url: must be an http:// or https:// URL`);
  });
  const l = c.locks;
  if (l.min_ttl_ms > l.default_ttl_ms || l.default_ttl_ms > l.max_ttl_ms)
    problems.push('locks.default_ttl_ms: must be between locks.min_ttl_ms and locks.max_ttl_ms');
  c.channel.namespaces.forEach((ns, i) => {
    if (ns.fenced && !l.enabled) problems.push(`channel.namespaces.${i}.fenced: needs locks.enabled`);
  });
}

/** engine.broker "nats": history and presence stay in Redis, so it needs the Redis engine. */
function checkBroker(c: Config, problems: string[]): void {
  if (c.engine.broker !== 'nats') {
    if (c.engine.nats.history === 'jetstream') problems.push('engine.nats.history: "jetstream" needs engine.broker "nats"');
    return;
  }
  if (c.engine.type !== 'redis')
    problems.push(
      'engine.broker: "nats" needs engine.type "redis" (history and presence live in Redis; memory offsets are per node, so recovery across nodes could not be exact)',
    );
  if (c.engine.redis.replica_wait > 0) problems.push('engine.redis.replica_wait: not supported with engine.broker "nats"');
  // Map updates are published by the Redis map script itself (one atomic step), on Redis PUB/SUB.
  const isMap = (t: string | undefined): boolean => t !== undefined && t.startsWith('map');
  const maps = c.channel.namespaces.filter((n) => isMap(n.subscription_type)).map((n) => n.name);
  if (isMap(c.channel.without_namespace.subscription_type)) maps.push('without_namespace');
  if (maps.length > 0)
    problems.push(`channel.namespaces: map subscriptions (${maps.join(', ')}) need the Redis broker, not engine.broker "nats"`);
  const urls = Array.isArray(c.engine.nats.url) ? c.engine.nats.url : [c.engine.nats.url];
  if (urls.length === 0 || urls.some((u) => !/^(nats|tls):\/\/[^/]+$/.test(u) && !/^[^/:]+:\d+$/.test(u)))
    problems.push('engine.nats.url: expected nats://host:port (or a list of them)');
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(c.engine.nats.prefix))
    problems.push('engine.nats.prefix: letters, digits, "_" and "-", in tokens joined by "."');
  if (c.engine.nats.history === 'jetstream') checkJetStream(c, problems);
}

/** engine.nats.history "jetstream": one stream keeps at most max_history_size messages per channel. */
function checkJetStream(c: Config, problems: string[]): void {
  const js = c.engine.nats.jetstream;
  if (js.max_history_size < 1) problems.push('engine.nats.jetstream.max_history_size: at least 1');
  if (js.replicas < 1 || js.replicas > 5) problems.push('engine.nats.jetstream.replicas: 1 to 5');
  if (js.max_age < 1000) problems.push('engine.nats.jetstream.max_age: at least 1s (a channel quiet this long starts a new epoch)');
  const namespaces: Array<[string, { history_size: number; history_ttl: number }]> = [
    ...c.channel.namespaces.map((ns, i) => [`channel.namespaces.${i}`, ns] as [string, { history_size: number; history_ttl: number }]),
    ['channel.without_namespace', c.channel.without_namespace],
  ];
  for (const [path, ns] of namespaces)
    if (ns.history_size > js.max_history_size)
      problems.push(`${path}.history_size: ${ns.history_size} is above engine.nats.jetstream.max_history_size (${js.max_history_size})`);
  // The stream drops every message at max_age, whatever the namespace's history_ttl.
  for (const [path, ns] of namespaces)
    if (ns.history_size > 0 && ns.history_ttl > js.max_age)
      problems.push(`${path}.history_ttl: ${ns.history_ttl}ms is above engine.nats.jetstream.max_age (${js.max_age}ms)`);
}

/** "Expected union value" says nothing: name the allowed values or the duration format. */
function expectation(schema: TSchema, message: string): string {
  if (schema.description === DURATION) return 'expected a duration like "25s", "500ms", "1m30s" or a number of seconds';
  const anyOf = (schema as { anyOf?: Array<{ const?: unknown }> }).anyOf;
  if (anyOf && anyOf.length > 0 && anyOf.every((s) => s.const !== undefined))
    return `expected one of ${anyOf.map((s) => JSON.stringify(s.const)).join(', ')}`;
  return message;
}

function resolveDurations(schema: TSchema, value: Record<string, unknown>, path: string, problems: string[]): void {
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!props) return;
  for (const [key, sub] of Object.entries(props)) {
    const v = value[key];
    const p = path ? `${path}.${key}` : key;
    if (sub.description === DURATION && (typeof v === 'string' || typeof v === 'number')) {
      try {
        value[key] = parseDuration(v, p);
      } catch (e) {
        problems.push(...(e as ConfigError).problems);
      }
    } else if (Array.isArray(v) && (sub as { items?: TSchema }).items) {
      v.forEach((item, i) => {
        if (item && typeof item === 'object')
          resolveDurations((sub as unknown as { items: TSchema }).items, item as Record<string, unknown>, `${p}.${i}`, problems);
      });
    } else if (v && typeof v === 'object') {
      resolveDurations(sub, v as Record<string, unknown>, p, problems);
    }
  }
}

/**
 * SWITCHBOARD_HTTP_SERVER_PORT=9000 → http_server.port. Key names contain
 * underscores too, so the variable is matched against the schema's keys.
 */
function fromEnv(env: NodeJS.ProcessEnv, warnings: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('SWITCHBOARD_') || value === undefined) continue;
    const path = matchPath(ConfigSchema, name.slice('SWITCHBOARD_'.length).toLowerCase());
    if (!path) {
      warnings.push(`environment variable ${name} matches no config key (ignored)`);
      continue;
    }
    setPath(out, path, envValue(value));
  }
  return out;
}

function matchPath(schema: TSchema, rest: string): string[] | undefined {
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!props) return undefined;
  const keys = Object.keys(props).sort((a, b) => b.length - a.length);
  for (const key of keys) {
    if (rest === key) return [key];
    if (rest.startsWith(key + '_')) {
      const sub = matchPath(props[key]!, rest.slice(key.length + 1));
      if (sub) return [key, ...sub];
    }
  }
  return undefined;
}

function envValue(v: string): unknown {
  const t = v.trim();
  if (t.startsWith('[') || t.startsWith('{')) {
    try {
      return JSON.parse(t);
    } catch {
      return v;
    }
  }
  return v; // Value.Convert turns "true"/"9000" into the schema's type.
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    if (cur[k] === null || typeof cur[k] !== 'object' || Array.isArray(cur[k])) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)) {
      out[k] = deepMerge(prev as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      out[k] = v;
    }
  }
  return out;
}

function dotted(jsonPointer: string): string {
  return jsonPointer.replace(/^\//, '').split('/').filter(Boolean).join('.');
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}
