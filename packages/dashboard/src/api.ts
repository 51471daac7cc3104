/** The admin API of the server (packages/server/src/api/admin.ts), with the token from the login. */

const TOKEN_KEY = 'switchboard-admin-token';

export class Unauthorized extends Error {}

export interface ApiError {
  code: number;
  message: string;
}

export interface NodeInfo {
  uid: string;
  name: string;
  version: string;
  num_clients: number;
  num_users: number;
  num_subs: number;
  num_channels: number;
  uptime: number;
}

export interface Connection {
  user: string;
  transport: string;
  protocol: string;
  app_name?: string;
  app_version?: string;
  connected_at_ms: number;
  state: { channels: Record<string, object> };
  conn_info?: unknown;
  session: string;
  node: string;
  ip: string;
}

export interface ClientInfo {
  user: string;
  client: string;
  conn_info?: unknown;
  chan_info?: unknown;
}

export interface Publication {
  data: unknown;
  info?: ClientInfo;
  offset?: number;
  tags?: Record<string, string>;
  time?: number;
}

export interface Sample {
  t: number;
  nodes: number;
  clients: number;
  users: number;
  subs: number;
  publications_per_s: number;
  deliveries_per_s: number;
  api_commands_per_s: number;
}

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function logout(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Logs in; resolves, or rejects with the server's message (wrong password, too many attempts). */
export async function login(password: string): Promise<void> {
  const res = await fetch('auth', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
  const body = (await res.json()) as { token?: string; error?: ApiError };
  if (!res.ok || body.token === undefined) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
  sessionStorage.setItem(TOKEN_KEY, body.token);
}

async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: { authorization: `token ${token()}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  if (res.status === 401) throw new Unauthorized('unauthorized');
  const json = (await res.json()) as { result?: T; error?: ApiError } & T;
  if (!res.ok) throw new Error(json.error?.message ?? `HTTP ${res.status}`);
  return json;
}

/** One server API method; rejects with the protocol error's message. */
export async function call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
  const r = await request<{ result?: T; error?: ApiError }>('POST', `api/${method}`, params);
  if (r.error) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.result as T;
}

export async function series(): Promise<{ interval_ms: number; samples: Sample[] }> {
  return request('GET', 'api/series');
}
