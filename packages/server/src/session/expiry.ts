/**
 * One deadline and the timer that waits for it: a connection's expiry and
 * each subscription's use the same class.
 *
 * `setTimeout` may fire a little before the delay it was given (timer
 * coarseness, clock adjustments); a timer that fires before the deadline
 * re-arms for the rest instead of dropping the expiry.
 */
export class ExpiryTimer {
  private timer: NodeJS.Timeout | undefined;
  private due = 0;

  /** `now` is the clock the deadline is read against (unix ms). */
  constructor(
    private readonly onDue: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** The pending deadline (unix ms), 0 when disarmed. */
  get deadline(): number {
    return this.due;
  }

  /** Calls `onDue` once the clock reaches `deadline` (unix ms); 0 disarms. Replaces any earlier deadline. */
  set(deadline: number): void {
    this.clear();
    if (deadline <= 0) return;
    this.due = deadline;
    this.schedule();
  }

  clear(): void {
    this.due = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    // One shared callback with the timer as its argument: no closure per timer (one per connection adds up).
    this.timer = setTimeout(fireExpiry, Math.max(0, this.due - this.now()), this);
    this.timer.unref();
  }

  /** @internal the timer fired */
  fired(): void {
    this.timer = undefined;
    if (this.due <= 0) return;
    if (this.now() < this.due) return this.schedule();
    this.due = 0;
    this.onDue();
  }
}

function fireExpiry(t: ExpiryTimer): void {
  t.fired();
}
