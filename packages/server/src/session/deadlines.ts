/**
 * Deadlines that all have the same delay, so they fall due in the order they
 * were added: one timer for all of them instead of one per item. Adding and
 * dropping an item is a Map set and delete. Used for the stale-connection
 * close (client.stale_close_delay), which every connection arms at its
 * upgrade and nearly every one drops a few milliseconds later at connect:
 * a timer armed and cleared per connection was a visible share of a connect
 * storm's CPU.
 */
export class FifoDeadlines<T> {
  private readonly due = new Map<T, number>();
  private timer: NodeJS.Timeout | undefined;

  /** `now`: a monotonic clock in ms. */
  constructor(
    private readonly delayMs: number,
    private readonly onDue: (item: T) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Calls `onDue(item)` after the delay, unless it is deleted first. Adding an item again restarts its delay. */
  add(item: T): void {
    this.due.delete(item);
    const at = this.now() + this.delayMs;
    this.due.set(item, at);
    if (!this.timer) this.arm(at);
  }

  delete(item: T): void {
    if (!this.due.delete(item) || this.due.size > 0 || !this.timer) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(at: number): void {
    this.timer = setTimeout(fire, Math.max(0, at - this.now()), this as FifoDeadlines<unknown>);
    this.timer.unref();
  }

  /** @internal the timer fired: every item due goes, in order; the timer is armed again for the next. */
  fired(): void {
    this.timer = undefined;
    const now = this.now();
    for (const [item, at] of this.due) {
      if (at > now) return this.arm(at);
      this.due.delete(item);
      this.onDue(item);
    }
  }
}

function fire(d: FifoDeadlines<unknown>): void {
  d.fired();
}
