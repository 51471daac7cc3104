/**
 * `switchboard types`: TypeScript types for typed channels and RPC from the
 * JSON Schemas in the config (namespace `publication_schema`, `rpc.schemas`),
 * so a frontend and a backend share one definition of every event.
 *
 * Covers the subset of JSON Schema that app payloads use: object /
 * properties / required / additionalProperties, enum, const, array (items,
 * tuples), oneOf / anyOf / allOf, string, number, integer, boolean, null,
 * type lists, local `$ref` to `$defs` / `definitions`, descriptions as
 * comments. Anything else becomes `unknown`, never a wrong type.
 */
import type { Config } from './config/load.js';

type Schema = boolean | Record<string, unknown>;

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** "notification:markRead" → "NotificationMarkRead". */
export function typeName(s: string): string {
  const words = s.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const name = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
  return name === '' ? 'Default' : /^[0-9]/.test(name) ? `T${name}` : name;
}

function propKey(k: string): string {
  return IDENT.test(k) ? k : JSON.stringify(k);
}

function comment(text: unknown, indent: string): string {
  if (typeof text !== 'string' || text.trim() === '') return '';
  return `${indent}/** ${text.replace(/\*\//g, '*\\/').replace(/\s*\n\s*/g, ' ')} */\n`;
}

function literal(v: unknown): string {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return JSON.stringify(v);
  return 'unknown';
}

function union(parts: string[]): string {
  const uniq = [...new Set(parts)];
  if (uniq.length === 0) return 'never';
  if (uniq.includes('unknown')) return 'unknown';
  // Members that are unions themselves flatten; only intersections need parentheses.
  return uniq.length === 1 ? uniq[0]! : uniq.map((u) => (u.includes(' & ') ? paren(u) : u)).join(' | ');
}

/** True when `t` has a union or intersection at its top level (outside braces, brackets and strings). */
function compound(t: string): boolean {
  let depth = 0;
  let quote = '';
  for (let i = 0; i < t.length; i++) {
    const c = t[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '{' || c === '[' || c === '(' || c === '<') depth++;
    else if (c === '}' || c === ']' || c === ')' || c === '>') depth--;
    else if (depth === 0 && (c === '|' || c === '&') && t[i - 1] === ' ' && t[i + 1] === ' ') return true;
  }
  return false;
}

function paren(t: string): string {
  return compound(t) ? `(${t})` : t;
}

/** Converts one schema; `defs` maps local `$ref` targets to the emitted names. */
class Converter {
  constructor(private readonly refName: (ref: string) => string | undefined) {}

  convert(s: Schema, indent = ''): string {
    if (s === true) return 'unknown';
    if (s === false) return 'never';
    if (!s || typeof s !== 'object') return 'unknown';
    if (typeof s.$ref === 'string') return this.refName(s.$ref) ?? 'unknown';
    if ('const' in s) return literal(s.const);
    if (Array.isArray(s.enum)) return union(s.enum.map(literal));

    const parts: string[] = [];
    const own = this.ownType(s, indent);
    if (own !== undefined) parts.push(own);
    for (const key of ['oneOf', 'anyOf'] as const) {
      const list = s[key];
      if (Array.isArray(list)) parts.push(union(list.map((x) => this.convert(x as Schema, indent))));
    }
    if (Array.isArray(s.allOf)) for (const x of s.allOf) parts.push(this.convert(x as Schema, indent));
    if (parts.length === 0) return 'unknown';
    // A schema's own shape and its oneOf/anyOf/allOf all apply: an intersection.
    const meaningful = parts.filter((p) => p !== 'unknown' && p !== '{}');
    if (meaningful.length === 0) return parts[0] === '{}' ? '{ [key: string]: unknown }' : 'unknown';
    return meaningful.length === 1 ? meaningful[0]! : meaningful.map(paren).join(' & ');
  }

  /** The schema's `type` (and properties / items), or undefined when it has none. */
  private ownType(s: Record<string, unknown>, indent: string): string | undefined {
    const types = Array.isArray(s.type) ? (s.type as unknown[]) : typeof s.type === 'string' ? [s.type] : [];
    const hasObjectShape = s.properties !== undefined || s.additionalProperties !== undefined || s.required !== undefined;
    if (types.length === 0) {
      if (hasObjectShape) return this.object(s, indent);
      if (s.items !== undefined) return this.array(s, indent);
      return undefined;
    }
    return union(
      types.map((t) => {
        switch (t) {
          case 'string':
            return 'string';
          case 'number':
          case 'integer':
            return 'number';
          case 'boolean':
            return 'boolean';
          case 'null':
            return 'null';
          case 'array':
            return this.array(s, indent);
          case 'object':
            return this.object(s, indent);
          default:
            return 'unknown';
        }
      }),
    );
  }

  private array(s: Record<string, unknown>, indent: string): string {
    const tuple = Array.isArray(s.prefixItems) ? s.prefixItems : Array.isArray(s.items) ? s.items : undefined;
    if (tuple) {
      const rest = Array.isArray(s.prefixItems) ? s.items : s.additionalItems;
      const elems = (tuple as Schema[]).map((x) => this.convert(x, indent));
      const min = typeof s.minItems === 'number' ? s.minItems : 0;
      const typed = elems.map((e, i) => (i < min ? e : `${paren(e)}?`));
      if (rest === false || rest === undefined) return `[${typed.join(', ')}]`;
      return `[${[...typed, `...${paren(this.convert(rest as Schema, indent))}[]`].join(', ')}]`;
    }
    const item = s.items === undefined ? 'unknown' : this.convert(s.items as Schema, indent);
    return `${paren(item)}[]`;
  }

  private object(s: Record<string, unknown>, indent: string): string {
    const props = (s.properties && typeof s.properties === 'object' ? s.properties : {}) as Record<string, Schema>;
    const required = new Set(Array.isArray(s.required) ? (s.required as string[]) : []);
    const inner = indent + '  ';
    const lines: string[] = [];
    for (const [k, v] of Object.entries(props)) {
      lines.push(
        `${comment(typeof v === 'object' ? v.description : undefined, inner)}${inner}${propKey(k)}${required.has(k) ? '' : '?'}: ${this.convert(v, inner)};`,
      );
    }
    // Required names without a property schema still exist.
    for (const k of required) if (!(k in props)) lines.push(`${inner}${propKey(k)}: unknown;`);
    const ap = s.additionalProperties;
    if (ap !== undefined && ap !== false) {
      // An index signature must admit every declared property's type too.
      const t = ap === true || Object.keys(props).length > 0 ? 'unknown' : this.convert(ap as Schema, inner);
      lines.push(`${inner}[key: string]: ${t};`);
    }
    if (lines.length === 0) return '{}';
    return `{\n${lines.join('\n')}\n${indent}}`;
  }
}

/** Converts a standalone schema (its own `$defs` are inlined through `defName`). */
export function schemaToTs(schema: unknown, defName: (ref: string) => string | undefined = () => undefined): string {
  return new Converter(defName).convert(schema as Schema);
}

interface Entry {
  readonly name: string;
  readonly schema: Schema;
  readonly doc: string;
}

function declare(prefix: string, e: Entry, out: string[]): void {
  const s = e.schema;
  const defs = typeof s === 'object' && s ? ((s.$defs ?? s.definitions) as Record<string, Schema> | undefined) : undefined;
  const refName = (ref: string): string | undefined => {
    const m = /^#\/(?:\$defs|definitions)\/(.+)$/.exec(ref);
    if (m && defs && m[1]! in defs) return prefix + typeName(m[1]!);
    if (ref === '#') return e.name;
    return undefined;
  };
  for (const [k, v] of Object.entries(defs ?? {})) {
    out.push(
      `${comment(typeof v === 'object' ? v.description : undefined, '')}export type ${prefix}${typeName(k)} = ${schemaToTs(v, refName)};\n`,
    );
  }
  out.push(`${comment(e.doc, '')}export type ${e.name} = ${schemaToTs(s, refName)};\n`);
}

/**
 * The TypeScript module for a config: one type per typed namespace and RPC
 * method, maps by name, and helpers that pick a channel's type.
 */
export function generateTypes(config: Config, source = 'the configuration'): string {
  const boundary = config.channel.namespace_boundary;
  const out: string[] = [`// Generated by \`switchboard types\` from ${source}. Do not edit: change the schemas and generate again.\n`];
  const channelMap: string[] = [];
  const nss = [{ ...config.channel.without_namespace, name: '' }, ...config.channel.namespaces];
  for (const ns of nss) {
    if (ns.publication_schema === undefined) continue;
    const base = ns.name === '' ? 'Default' : typeName(ns.name);
    const s = ns.publication_schema as Schema;
    const desc = typeof s === 'object' && s && typeof s.description === 'string' ? s.description + ' ' : '';
    const where = ns.name === '' ? 'channels without a namespace' : `channels "${ns.name}${boundary}…"`;
    declare(base, { name: `${base}Publication`, schema: s, doc: `${desc}Publications in ${where}.` }, out);
    channelMap.push(`  ${JSON.stringify(ns.name)}: ${base}Publication;`);
  }
  const rpcMap: string[] = [];
  for (const [method, schema] of Object.entries(config.rpc.schemas)) {
    const base = typeName(method);
    const s = schema as Schema;
    const desc = typeof s === 'object' && s && typeof s.description === 'string' ? s.description + ' ' : '';
    declare(base, { name: `${base}Request`, schema: s, doc: `${desc}Request data of RPC "${method}".` }, out);
    rpcMap.push(`  ${JSON.stringify(method)}: ${base}Request;`);
  }
  out.push(
    `/** Publication type by namespace ("" = channels without a namespace). */\nexport interface ChannelPublications {\n${channelMap.join('\n')}\n}\n`,
  );
  out.push(`/** RPC request data type by method. */\nexport interface RpcRequests {\n${rpcMap.join('\n')}\n}\n`);
  out.push(
    `/** The namespace of a channel name ("quotes:EURUSD" → "quotes"). */\n` +
      `export type NamespaceOf<C extends string> = C extends \`\${infer N}${boundary}\${string}\` ? N : '';\n`,
  );
  out.push(
    `/** What may be published into channel C (unknown for untyped namespaces). */\n` +
      `export type PublicationOf<C extends string> = NamespaceOf<C> extends keyof ChannelPublications ? ChannelPublications[NamespaceOf<C>] : unknown;\n`,
  );
  out.push(
    `/** The request data of RPC method M (unknown for methods without a schema). */\nexport type RpcRequestOf<M extends string> = M extends keyof RpcRequests ? RpcRequests[M] : unknown;\n`,
  );
  return out.join('\n');
}
