import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_METHODS, ErrorReplySchema, ParamsSchemas, ReplySchema, type ApiMethod } from './schemas.js';
import { normalizeParams, validatorFor } from './validate.js';

/** What the API routes do; the OpenAPI generator declares them with no-op handlers. */
export interface ApiRouteHandlers {
  /** `POST /api/<method>`; `req.body` is the normalized params, `req.validationError` what the schema check found. */
  command(method: ApiMethod, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
  /** `POST /api`: newline-delimited `{"method","params"}` commands (the raw text in `req.body`). */
  pipeline(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
  /** `POST /api/<anything else>`. */
  unknownMethod(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply>;
  /** A body that is not a JSON object. */
  badBody(reply: FastifyReply, message: string): FastifyReply;
}

const TAG = 'server API';

/**
 * Declares the server API routes with their schemas. The body schema of
 * `POST /api/<method>` is the method's params schema, checked by the same
 * compiled validator the pipeline and batch use; a failed check does not
 * stop the request (attachValidation) because a bad param is a protocol
 * error (HTTP 200, `{"error":{"code":107,...}}`), counted like any other.
 */
export function declareApiRoutes(api: FastifyInstance, h: ApiRouteHandlers): void {
  api.setValidatorCompiler(({ schema }) => validatorFor(schema));
  // Replies are written pre-serialized (history holds encoded publications):
  // the response schemas document them and are never used to serialize.
  api.setSerializerCompiler(() => (data) => JSON.stringify(data));

  for (const method of API_METHODS) {
    api.post(
      `/api/${method}`,
      {
        attachValidation: true,
        schema: {
          tags: [TAG],
          operationId: method,
          summary: ParamsSchemas[method].description,
          body: ParamsSchemas[method],
          response: {
            200: { ...ReplySchema(method), description: 'The result, or a protocol error (bad params: code 107).' },
            400: { ...ErrorReplySchema, description: 'The body is not a JSON object (code 107).' },
            401: { ...ErrorReplySchema, description: 'Missing or wrong API key (code 101).' },
          },
        },
        preValidation: async (req, reply) => {
          const parsed = parseBody(req.body);
          if (!parsed.ok) return h.badBody(reply, parsed.message);
          req.body = normalizeParams(method, parsed.value);
        },
      },
      (req, reply) => h.command(method, req, reply),
    );
  }

  api.post(
    '/api',
    {
      schema: {
        tags: [TAG],
        operationId: 'pipeline',
        summary: 'Several commands, one JSON object per line.',
        description:
          'The body is newline-delimited `{"method": "<method>", "params": {...}}` objects (as cent clients send pipelines). ' +
          'Every line is parsed before any runs: a bad line is HTTP 400 and runs nothing. The answer has one ' +
          '`{"result": ...}` or `{"error": ...}` line per command, in order.',
        response: {
          200: { type: 'string', description: 'One `{"result"}` or `{"error"}` JSON object per line.' },
          400: { ...ErrorReplySchema, description: 'A line is not a JSON object (code 107).' },
          401: { ...ErrorReplySchema, description: 'Missing or wrong API key (code 101).' },
        },
      },
    },
    (req, reply) => h.pipeline(req, reply),
  );

  api.post('/api/:method', { schema: { hide: true } }, (req, reply) => h.unknownMethod(req, reply));
}

/** The raw body text → a JSON object (an empty body is `{}`). */
export function parseBody(body: unknown): { ok: true; value: unknown } | { ok: false; message: string } {
  if (body === undefined || body === null || body === '') return { ok: true, value: {} };
  if (typeof body !== 'string') return { ok: true, value: body };
  try {
    const v: unknown = JSON.parse(body);
    if (v !== null && (typeof v !== 'object' || Array.isArray(v))) return { ok: false, message: 'body must be a JSON object' };
    return { ok: true, value: v };
  } catch (e) {
    return { ok: false, message: `invalid JSON (${(e as Error).message})` };
  }
}
