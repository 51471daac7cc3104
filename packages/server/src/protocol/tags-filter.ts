/**
 * Subscriber-side filters on publication tags (the SDK's `tagsFilter`,
 * sent as `tf` in the subscribe command): a tree of `and`/`or`/`not` nodes
 * over leaf comparisons of one tag. A filter is validated once when the
 * client subscribes and then evaluated once per distinct filter per
 * publication (the hub groups subscribers by `key`), never per subscriber.
 */

export type Comparison = 'eq' | 'neq' | 'in' | 'nin' | 'ex' | 'nex' | 'sw' | 'ew' | 'ct' | 'lt' | 'lte' | 'gt' | 'gte';

export type TagsFilter =
  | { readonly op: 'and' | 'or'; readonly nodes: readonly TagsFilter[] }
  | { readonly op: 'not'; readonly node: TagsFilter }
  | { readonly op: ''; readonly key: string; readonly cmp: 'in' | 'nin'; readonly vals: ReadonlySet<string> }
  | { readonly op: ''; readonly key: string; readonly cmp: 'ex' | 'nex' }
  | { readonly op: ''; readonly key: string; readonly cmp: 'lt' | 'lte' | 'gt' | 'gte'; readonly num: number }
  | { readonly op: ''; readonly key: string; readonly cmp: 'eq' | 'neq' | 'sw' | 'ew' | 'ct'; readonly val: string };

/** A validated filter and its canonical text (equal filters share one key, whatever their field order). */
export interface CompiledFilter {
  readonly filter: TagsFilter;
  readonly key: string;
}

/** Bounds that keep a hostile filter cheap to check and to evaluate. */
export const FILTER_LIMITS = { maxNodes: 64, maxDepth: 8, maxValues: 256, maxStringLength: 256 } as const;

/** Thrown for a filter the server will not evaluate; the message says why. */
export class TagsFilterError extends Error {}

const CMP = new Set<string>(['eq', 'neq', 'in', 'nin', 'ex', 'nex', 'sw', 'ew', 'ct', 'lt', 'lte', 'gt', 'gte']);
const NUMERIC = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

function fail(why: string): never {
  throw new TagsFilterError(why);
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') fail(`${what} must be a string`);
  if (v.length > FILTER_LIMITS.maxStringLength) fail(`${what} too long`);
  return v;
}

/** Checks a client's filter tree (JSON or Protobuf, already decoded to plain objects); TagsFilterError when it is bad. */
export function compileTagsFilter(input: unknown): CompiledFilter {
  const count = { nodes: 0 };
  const filter = compileNode(input, 1, count);
  return { filter, key: canonical(filter) };
}

function compileNode(n: unknown, depth: number, count: { nodes: number }): TagsFilter {
  if (typeof n !== 'object' || n === null || Array.isArray(n)) fail('node must be an object');
  if (depth > FILTER_LIMITS.maxDepth) fail('too deep');
  if (++count.nodes > FILTER_LIMITS.maxNodes) fail('too many nodes');
  const o = n as Record<string, unknown>;
  const op = o.op ?? '';
  const nodes = o.nodes ?? [];
  if (!Array.isArray(nodes)) fail('nodes must be an array');
  if (op === 'and' || op === 'or') {
    if (nodes.length === 0) fail(`${op} needs nodes`);
    return { op, nodes: nodes.map((c) => compileNode(c, depth + 1, count)) };
  }
  if (op === 'not') {
    if (nodes.length !== 1) fail('not needs exactly one node');
    return { op, node: compileNode(nodes[0], depth + 1, count) };
  }
  if (op !== '') fail('unknown op');
  if (nodes.length > 0) fail('a comparison has no nodes');
  const key = str(o.key, 'key');
  if (key === '') fail('key required');
  const cmp = o.cmp;
  if (typeof cmp !== 'string' || !CMP.has(cmp)) fail('unknown cmp');
  switch (cmp) {
    case 'in':
    case 'nin': {
      const vals = o.vals ?? [];
      if (!Array.isArray(vals) || vals.length === 0) fail(`${cmp} needs vals`);
      if (vals.length > FILTER_LIMITS.maxValues) fail('too many vals');
      return { op: '', key, cmp, vals: new Set(vals.map((v) => str(v, 'val'))) };
    }
    case 'ex':
    case 'nex':
      return { op: '', key, cmp };
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte': {
      const val = str(o.val, 'val');
      if (!NUMERIC.test(val)) fail(`${cmp} needs a numeric val`);
      return { op: '', key, cmp, num: Number(val) };
    }
    default:
      return { op: '', key, cmp: cmp as 'eq' | 'neq' | 'sw' | 'ew' | 'ct', val: str(o.val ?? '', 'val') };
  }
}

function canonical(f: TagsFilter): string {
  switch (f.op) {
    case 'and':
    case 'or':
      return f.op + '(' + f.nodes.map(canonical).join(',') + ')';
    case 'not':
      return 'not(' + canonical(f.node) + ')';
    default:
      if ('vals' in f) return JSON.stringify([f.key, f.cmp, [...f.vals].sort()]);
      if ('num' in f) return JSON.stringify([f.key, f.cmp, f.num]);
      if ('val' in f) return JSON.stringify([f.key, f.cmp, f.val]);
      return JSON.stringify([f.key, f.cmp]);
  }
}

/** Whether a publication with these tags passes the filter. A numeric comparison on a non-numeric tag fails. */
export function matchTags(f: TagsFilter, tags: Readonly<Record<string, string>> | undefined): boolean {
  switch (f.op) {
    case 'and':
      for (const n of f.nodes) if (!matchTags(n, tags)) return false;
      return true;
    case 'or':
      for (const n of f.nodes) if (matchTags(n, tags)) return true;
      return false;
    case 'not':
      return !matchTags(f.node, tags);
    default: {
      const v = tags !== undefined && Object.prototype.hasOwnProperty.call(tags, f.key) ? tags[f.key] : undefined;
      switch (f.cmp) {
        case 'ex':
          return v !== undefined;
        case 'nex':
          return v === undefined;
        case 'in':
          return v !== undefined && f.vals.has(v);
        case 'nin':
          return v === undefined || !f.vals.has(v);
        case 'eq':
          return v === f.val;
        case 'neq':
          return v !== f.val;
        case 'sw':
          return v !== undefined && v.startsWith(f.val);
        case 'ew':
          return v !== undefined && v.endsWith(f.val);
        case 'ct':
          return v !== undefined && v.includes(f.val);
        default: {
          if (v === undefined || !NUMERIC.test(v)) return false;
          const x = Number(v);
          if (f.cmp === 'lt') return x < f.num;
          if (f.cmp === 'lte') return x <= f.num;
          if (f.cmp === 'gt') return x > f.num;
          return x >= f.num;
        }
      }
    }
  }
}
