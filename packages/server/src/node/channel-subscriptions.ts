import type { Broker } from '../engine/types.js';
import type { Hub, Subscriber } from '../hub/hub.js';
import type { Logger } from '../observability/logger.js';

/**
 * Keeps the engine subscribed to exactly the channels that have subscribers
 * in the hub: the first subscriber of a channel subscribes the node, the
 * last one leaving unsubscribes it. A subscribe that follows an unsubscribe
 * still in flight waits for it, so the engine's calls for one channel stay
 * in order.
 */
export class ChannelSubscriptions {
  private readonly subscribed = new Map<string, Promise<void>>();
  private readonly pendingUnsubs = new Map<string, Promise<void>>();

  constructor(
    private readonly hub: Hub,
    private readonly engine: Pick<Broker, 'subscribe' | 'unsubscribe'>,
    private readonly log: Logger,
  ) {}

  /** Adds a subscriber to the hub; resolves once the engine delivers the channel to this node. */
  async add(sub: Subscriber): Promise<void> {
    const ch = sub.channel;
    const first = this.hub.addSubscriber(sub);
    let p = this.subscribed.get(ch);
    if (first || !p) {
      const prev = this.pendingUnsubs.get(ch) ?? Promise.resolve();
      const created: Promise<void> = prev.then(() => this.engine.subscribe(ch));
      p = created;
      this.subscribed.set(ch, created);
      created.catch(() => {
        if (this.subscribed.get(ch) === created) this.subscribed.delete(ch);
      });
    }
    await p;
  }

  remove(sub: Subscriber): void {
    const ch = sub.channel;
    if (!this.hub.removeSubscriber(sub)) return;
    const p = this.subscribed.get(ch) ?? Promise.resolve();
    this.subscribed.delete(ch);
    const u = p
      .catch(() => undefined)
      .then(() => (this.hub.hasSubscribers(ch) ? undefined : this.engine.unsubscribe(ch)))
      .catch((e: unknown) => this.log.warn({ channel: ch, err: String(e) }, 'engine unsubscribe failed'))
      .finally(() => {
        if (this.pendingUnsubs.get(ch) === u) this.pendingUnsubs.delete(ch);
      });
    this.pendingUnsubs.set(ch, u);
  }
}
