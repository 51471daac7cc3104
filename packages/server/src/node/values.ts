import { Errors, ReplyError } from '../protocol/codes.js';
import { toRawJson } from '../protocol/json.js';
import type { RawJSON } from '../protocol/types.js';

/** An in-process API payload as the engine keeps it (JSON text); undefined is a bad request. */
export function toRaw(data: unknown): RawJSON {
  if (data === undefined) throw new ReplyError(Errors.badRequest);
  return toRawJson(data);
}

/** A channel pattern (`*` any run, `?` one character) as an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  const esc = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp('^' + esc + '$');
}
