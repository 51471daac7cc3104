/** Deadlines further away than this wait in the shared wheel; nearer ones get a setTimeout of their own. */
export const FAR_MS = 60_000;

/**
 * Far deadlines of every ExpiryTimer, by the second they fall due in (rounded
 * up, so never early): one timer, ticking each second while any wait, instead of
 * a `setTimeout` per connection. A token's expiry is minutes to days away and
 * every connection with an `exp` has one: per connection, a Node timer is an
 * object of its own in a list per distinct delay (a connect storm's tokens
 * have as many delays as connections); here it is one Set entry.
 */
class SecondWheel {
  private readonly slots = new Map<number, Set<ExpiryTimer>>();
  private ticker: NodeJS.Timeout | undefined;
  /** The next second to fire. */
  private next = 0;
  private size = 0;

  add(t: ExpiryTimer, due: number): number {
    const sec = Math.ceil(due / 1000);
    let slot = this.slots.get(sec);
    if (!slot) this.slots.set(sec, (slot = new Set()));
    slot.add(t);
    this.size++;
    if (!this.ticker) {
      this.next = Math.floor(Date.now() / 1000);
      this.arm();
    }
    return sec;
  }

  remove(t: ExpiryTimer, sec: number): void {
    const slot = this.slots.get(sec);
    if (slot?.delete(t)) {
      this.size--;
      if (slot.size === 0) this.slots.delete(sec);
    }
    this.stopWhenEmpty();
  }

  /** The next tick just after the next whole second: a deadline fires less than a second after it passed. */
  private arm(): void {
    this.ticker = setTimeout(tickWheel, 1001 - (Date.now() % 1000));
    this.ticker.unref();
  }

  /** @internal the ticker fired: every second up to now fires, in order, then the next tick is armed. */
  advance(): void {
    this.ticker = undefined;
    const now = Math.floor(Date.now() / 1000);
    if (now - this.next > this.slots.size) {
      // the clock jumped far ahead (or the loop was blocked for long): visit the slots, not every second
      for (const sec of [...this.slots.keys()].sort((a, b) => a - b)) if (sec <= now) this.fire(sec);
      this.next = now + 1;
    } else for (; this.next <= now; this.next++) this.fire(this.next);
    if (this.size > 0 && !this.ticker) this.arm();
  }

  private fire(sec: number): void {
    const slot = this.slots.get(sec);
    if (!slot) return;
    this.slots.delete(sec);
    this.size -= slot.size;
    // an onDue may clear or re-arm another timer of this second: only those still waiting here fire
    for (const t of slot) if (t.waitsIn(sec)) t.fired();
  }

  private stopWhenEmpty(): void {
    if (this.size > 0 || !this.ticker) return;
    clearTimeout(this.ticker);
    this.ticker = undefined;
  }
}

const wheel = new SecondWheel();
function tickWheel(): void {
  wheel.advance();
}

/**
 * One deadline and the timer that waits for it: a connection's expiry and
 * each subscription's use the same class. Deadlines more than FAR_MS away
 * wait in a shared per-second wheel (up to a second late, never early);
 * nearer ones, and timers with a clock of their own, get a `setTimeout`.
 *
 * `setTimeout` may fire a little before the delay it was given (timer
 * coarseness, clock adjustments); a timer that fires before the deadline
 * re-arms for the rest instead of dropping the expiry.
 */
export class ExpiryTimer {
  /** Deadlines further away than this wait in the wheel (FAR_MS; tests lower it). */
  static farMs = FAR_MS;
  private timer: NodeJS.Timeout | undefined;
  /** The wheel second this timer waits in, 0 when not in the wheel. */
  private slot = 0;
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
    if (this.slot !== 0) wheel.remove(this, this.slot);
    this.slot = 0;
  }

  private schedule(): void {
    const wait = this.due - this.now();
    if (wait > ExpiryTimer.farMs && this.now === Date.now) {
      this.slot = wheel.add(this, this.due);
      return;
    }
    // One shared callback with the timer as its argument: no closure per timer (one per connection adds up).
    this.timer = setTimeout(fireExpiry, Math.max(0, wait), this);
    this.timer.unref();
  }

  /** @internal waiting in the wheel's second `sec` */
  waitsIn(sec: number): boolean {
    return this.slot === sec;
  }

  /** @internal the timer (or its wheel second) fired */
  fired(): void {
    this.timer = undefined;
    this.slot = 0;
    if (this.due <= 0) return;
    if (this.now() < this.due) return this.schedule();
    this.due = 0;
    this.onDue();
  }
}

function fireExpiry(t: ExpiryTimer): void {
  t.fired();
}
