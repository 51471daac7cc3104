import { Ajv, type ValidateFunction } from 'ajv';
import type { Config, NamespaceConfig } from '../config/load.js';
import { Errors, ReplyError } from '../protocol/codes.js';

/**
 * Typed channels: client publications into a namespace, and RPC request
 * data per method, must match the JSON Schema the config gives for them.
 * A mismatch is error 107 naming the failing path.
 */
export class PayloadValidators {
  private readonly ajv = new Ajv({ allErrors: false, strict: false, discriminator: true });
  private readonly publication = new Map<NamespaceConfig, ValidateFunction>();
  private readonly rpc = new Map<string, ValidateFunction>();

  constructor(config: Config) {
    const nss: NamespaceConfig[] = [config.channel.without_namespace, ...config.channel.namespaces];
    for (const ns of nss) {
      if (ns.publication_schema !== undefined)
        this.publication.set(ns, this.compile(ns.publication_schema, `publication_schema of ${ns.name ?? 'without_namespace'}`));
    }
    for (const [method, schema] of Object.entries(config.rpc.schemas)) this.rpc.set(method, this.compile(schema, `rpc.schemas.${method}`));
  }

  private compile(schema: unknown, where: string): ValidateFunction {
    try {
      return this.ajv.compile(schema as object);
    } catch (e) {
      throw new Error(`${where}: invalid JSON Schema: ${(e as Error).message}`);
    }
  }

  checkPublication(ns: NamespaceConfig, data: unknown): void {
    const v = this.publication.get(ns);
    if (v && !v(data)) throw invalid(v);
  }

  checkRpc(method: string, data: unknown): void {
    const v = this.rpc.get(method);
    if (v && !v(data)) throw invalid(v);
  }
}

function invalid(v: ValidateFunction): ReplyError {
  const err = v.errors?.[0];
  const path = err ? 'data' + err.instancePath.replace(/\//g, '.') : 'data';
  return new ReplyError({ code: Errors.badRequest.code, message: `bad request: ${path} ${err?.message ?? 'is invalid'}` });
}
