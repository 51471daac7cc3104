import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { Errors, ReplyError } from '../protocol/codes.js';
import { ParamsSchemas, type ApiMethod, type ParamsOf } from './schemas.js';

/**
 * The one validator of server API params: each method's schema compiled
 * once, used by the Fastify routes (as their validator compiler), by the
 * `POST /api` pipeline and by `batch` sub-commands.
 *
 * No coercion, no defaults, no removal: what passes is what was sent (minus
 * nulls, see dropNulls), so the route and the pipeline see the same params.
 */
const ajv = new Ajv({ allErrors: false, strict: true, coerceTypes: false, useDefaults: false });

const compiled = new Map<ApiMethod, ValidateFunction>();
const bySchema = new Map<object, ValidateFunction>();
for (const method of Object.keys(ParamsSchemas) as ApiMethod[]) {
  const v = ajv.compile(ParamsSchemas[method]);
  compiled.set(method, v);
  bySchema.set(ParamsSchemas[method], v);
}

/**
 * Fastify's validator compiler for the API routes: the compiled validator of
 * a params schema, the very function the pipeline and batch use.
 */
export function validatorFor(schema: object): ValidateFunction {
  const v = bySchema.get(schema);
  // Fail at startup rather than quietly compile a second, different validator.
  if (!v) throw new Error('the server API routes validate only with the params schemas of schemas.ts');
  return v;
}

/**
 * A JSON null for a typed field means "absent", as a Go decoder leaves the
 * field at its zero value (and as this API always answered); nulls inside
 * free JSON (`data`, `info`) stay. Returns a copy; params that are not an
 * object are returned as they are, for the schema to reject.
 */
export function dropNulls(schema: TSchema, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!props) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const s = props[k];
    if (v === null && s && s.type !== undefined) continue;
    out[k] = s && s.type === 'object' ? dropNulls(s, v) : v;
  }
  return out;
}

/** Params as the validator should see them: absent → {}, nulls of typed fields dropped. */
export function normalizeParams(method: ApiMethod, params: unknown): unknown {
  if (params === null || params === undefined) return {};
  return dropNulls(ParamsSchemas[method], params);
}

/** Checks (normalized) params; throws the 107 reply naming the failing field. */
export function checkParams<M extends ApiMethod>(method: M, params: unknown): ParamsOf<M> {
  const v = compiled.get(method)!;
  if (!v(params)) throw badParams(v.errors ?? []);
  return params as ParamsOf<M>;
}

/** One failed check, as ajv reports it (and Fastify hands it on in `req.validationError.validation`). */
export type ValidationIssue = Pick<ErrorObject, 'keyword' | 'instancePath' | 'params' | 'message'>;

/** The 107 error for failed validation, naming the field by its dotted path. */
export function badParams(errors: readonly ValidationIssue[]): ReplyError {
  return new ReplyError({ code: Errors.badRequest.code, message: `bad request: ${describe(errors[0])}` });
}

function describe(e: ValidationIssue | undefined): string {
  if (!e) return 'invalid params';
  const path = e.instancePath.slice(1).replace(/\//g, '.');
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty;
    return `${path ? path + '.' : ''}${missing} required`;
  }
  const what = path || 'params';
  if (e.keyword === 'minLength' && (e.params as { limit: number }).limit === 1) return `${what} must not be empty`;
  return `${what} ${e.message ?? 'is invalid'}`;
}
