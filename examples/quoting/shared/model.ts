/** The app's data types, shared by the backend and the front end. */
export type Role = 'agent' | 'client' | 'admin';
export interface User {
  id: string;
  name: string;
  role: Role;
}
export const FIELDS = ['premium', 'deductible', 'coverage', 'notes'] as const;
export type Field = (typeof FIELDS)[number];
export type QuoteStatus = 'draft' | 'review' | 'bound' | 'declined';

export interface Quote {
  id: string;
  customer: string;
  /** The client user this quote is for. */
  client: string;
  fields: Record<Field, string>;
  status: QuoteStatus;
  version: number;
  updatedBy: string;
  updatedAt: string;
}
