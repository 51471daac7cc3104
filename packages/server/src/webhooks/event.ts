/** What a webhook can tell (the `events` of an endpoint). */
export type WebhookEventType = 'connect' | 'disconnect' | 'subscribe' | 'unsubscribe' | 'channel_occupied' | 'channel_vacated';

/** The JSON body of a delivery. */
export interface WebhookEvent {
  /** Unique per event, the same on every attempt: receivers dedup by it. */
  readonly id: string;
  readonly type: WebhookEventType;
  /** Unix ms when the node saw it happen. */
  readonly time: number;
  /** The node's uid. */
  readonly node: string;
  readonly client?: string;
  readonly user?: string;
  readonly channel?: string;
}

/** How an event is kept in the outbox: the endpoint's name and the body, signed at each attempt. */
export interface OutboxRecord {
  /** Endpoint name. */
  readonly e: string;
  /** Event id and type (also in the body), so a delivery needs no parse of the body. */
  readonly i: string;
  readonly t: WebhookEventType;
  /** The body, sent as is. */
  readonly b: string;
}
