/** The backend's JSON API (same origin, cookie session). */
export interface ApiError {
  status: number;
  code: number;
  message: string;
}

export async function api<T>(path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const json = (await res.json().catch(() => ({}))) as { error?: { code: number; message: string } };
  if (!res.ok || json.error) {
    throw { status: res.status, code: json.error?.code ?? res.status, message: json.error?.message ?? res.statusText } satisfies ApiError;
  }
  return json as T;
}

export const isApiError = (e: unknown): e is ApiError => typeof e === 'object' && e !== null && 'status' in e && 'message' in e;
