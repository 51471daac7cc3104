import type { Config, NamespaceConfig } from '../config/load.js';
import { Errors, ReplyError } from '../protocol/codes.js';

export interface ResolvedChannel {
  readonly namespace: string;
  readonly options: NamespaceConfig;
  /** Users named after the user boundary (`dialog:#42,43`), undefined when not user-limited. */
  readonly allowedUsers?: readonly string[];
  readonly private: boolean;
}

/** Channel names → namespace options; name validation. */
export class ChannelRules {
  private readonly namespaces = new Map<string, NamespaceConfig>();
  private readonly regexes = new Map<NamespaceConfig, RegExp>();
  private readonly cache = new Map<string, ResolvedChannel>();

  constructor(private readonly cfg: Config['channel']) {
    for (const ns of cfg.namespaces) this.namespaces.set(ns.name, ns);
    for (const ns of [cfg.without_namespace, ...cfg.namespaces]) {
      if (ns.channel_regex) this.regexes.set(ns, new RegExp(ns.channel_regex));
    }
  }

  /** Throws 107 for a malformed name and 102 for an unknown namespace. */
  resolve(channel: string): ResolvedChannel {
    const hit = this.cache.get(channel);
    if (hit) return hit;
    if (channel.length === 0 || channel.length > this.cfg.max_length) throw new ReplyError(Errors.badRequest);
    const isPrivate = this.cfg.private_prefix !== '' && channel.startsWith(this.cfg.private_prefix);
    const name = isPrivate ? channel.slice(this.cfg.private_prefix.length) : channel;
    const b = name.indexOf(this.cfg.namespace_boundary);
    let namespace = '';
    let options: NamespaceConfig;
    if (b > 0) {
      namespace = name.slice(0, b);
      const ns = this.namespaces.get(namespace);
      if (!ns) throw new ReplyError(Errors.unknownChannel);
      options = ns;
    } else {
      options = this.cfg.without_namespace;
    }
    const re = this.regexes.get(options);
    if (re) {
      const rest = b > 0 ? name.slice(b + this.cfg.namespace_boundary.length) : name;
      if (!re.test(rest)) throw new ReplyError(Errors.badRequest);
    }
    let allowedUsers: string[] | undefined;
    const ub = this.cfg.user_boundary ? name.lastIndexOf(this.cfg.user_boundary) : -1;
    if (ub !== -1) {
      allowedUsers = name
        .slice(ub + this.cfg.user_boundary.length)
        .split(this.cfg.user_separator)
        .filter((u) => u !== '');
    }
    const resolved: ResolvedChannel = { namespace, options, allowedUsers, private: isPrivate };
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(channel, resolved);
    return resolved;
  }

  /** The personal channel of a user (`personal:#42`), or undefined when disabled. */
  personalChannel(user: string, personal: Config['client']['subscribe_to_user_personal_channel']): string | undefined {
    if (!personal.enabled || user === '') return undefined;
    const ns = personal.personal_channel_namespace;
    return (ns ? ns + this.cfg.namespace_boundary : '') + this.cfg.user_boundary + user;
  }
}
