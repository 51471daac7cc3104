/** The app's own data, in memory: users (with roles), sessions, quotes. */
import { randomBytes } from 'node:crypto';

import type { Field, Quote, User } from '../shared/model.js';

export { FIELDS, type Field, type Quote, type QuoteStatus, type Role, type User } from '../shared/model.js';

/** Demo directory: two agents, a client, an admin. */
export const USERS: Record<string, User> = {
  alice: { id: 'alice', name: 'Alice Martin', role: 'agent' },
  bob: { id: 'bob', name: 'Bob Okafor', role: 'agent' },
  carol: { id: 'carol', name: 'Carol Chen', role: 'client' },
  dave: { id: 'dave', name: 'Dave Ruiz', role: 'admin' },
};

export interface Session {
  user: User;
  /** Unix ms. */
  expiresAt: number;
}

export class Sessions {
  private readonly byId = new Map<string, Session>();
  constructor(private readonly ttlMs: number) {}
  create(user: User, ttlMs = this.ttlMs): string {
    const id = randomBytes(18).toString('base64url');
    this.byId.set(id, { user, expiresAt: Date.now() + ttlMs });
    return id;
  }
  /** The live session, or why there is none. */
  get(id: string | undefined): Session | 'missing' | 'expired' {
    const s = id ? this.byId.get(id) : undefined;
    if (!s) return 'missing';
    if (s.expiresAt <= Date.now()) {
      this.byId.delete(id!);
      return 'expired';
    }
    return s;
  }
  delete(id: string | undefined): void {
    if (id) this.byId.delete(id);
  }
}

export class Quotes {
  private readonly byId = new Map<string, Quote>();
  private next = 1001;
  create(customer: string, client: string, by: string, fields: Partial<Record<Field, string>> = {}): Quote {
    const q: Quote = {
      id: `Q-${this.next++}`,
      customer,
      client,
      fields: { premium: '', deductible: '', coverage: '', notes: '', ...fields },
      status: 'draft',
      version: 0,
      updatedBy: by,
      updatedAt: new Date().toISOString(),
    };
    this.byId.set(q.id, q);
    return q;
  }
  get(id: string): Quote | undefined {
    return this.byId.get(id);
  }
  all(): Quote[] {
    return [...this.byId.values()];
  }
}

export const summaryOf = (q: Quote) => ({
  id: q.id,
  customer: q.customer,
  client: q.client,
  premium: q.fields.premium,
  status: q.status,
  version: q.version,
  updatedBy: q.updatedBy,
  updatedAt: q.updatedAt,
});
