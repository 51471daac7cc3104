/** A connection as the heartbeat wheel sees it. */
export interface Heartbeat {
  /** Set by the session whenever the client sends anything. */
  awaitingPong: boolean;
  /** Slot bookkeeping, owned by the wheel. */
  hbSlot: number;
  hbPongSlot: number;
  sendPing(): void;
  onNoPong(): void;
}

/**
 * One timer for all connections. Connections sit in the slot of the tick at
 * which they are next pinged; after a ping they also sit in the slot at
 * which their pong is due. A tick touches only the connections of its slot,
 * so pings are spread evenly over the interval.
 */
export class HeartbeatWheel {
  private readonly tickMs: number;
  private readonly pingSlots: Set<Heartbeat>[];
  private readonly pongSlots: Set<Heartbeat>[];
  private readonly pongDelay: number;
  private cursor = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(pingIntervalMs: number, pongTimeoutMs: number) {
    this.tickMs = Math.max(20, Math.min(1000, Math.floor(pingIntervalMs / 10)));
    const n = Math.max(1, Math.round(pingIntervalMs / this.tickMs));
    this.pingSlots = Array.from({ length: n }, () => new Set<Heartbeat>());
    this.pongDelay = pongTimeoutMs > 0 ? Math.max(1, Math.ceil(pongTimeoutMs / this.tickMs)) : 0;
    this.pongSlots = Array.from({ length: this.pongDelay + 1 }, () => new Set<Heartbeat>());
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  add(h: Heartbeat): void {
    const n = this.pingSlots.length;
    h.hbSlot = (this.cursor + n - 1) % n;
    h.hbPongSlot = -1;
    this.pingSlots[h.hbSlot]!.add(h);
  }

  remove(h: Heartbeat): void {
    if (h.hbSlot >= 0) this.pingSlots[h.hbSlot]?.delete(h);
    if (h.hbPongSlot >= 0) this.pongSlots[h.hbPongSlot]?.delete(h);
    h.hbSlot = -1;
    h.hbPongSlot = -1;
  }

  /**
   * The cursor moves on only after the tick, so a connection added during
   * it (from a callback) lands in the slot just before this one, a full
   * interval away, not in the slot being walked; and one removed during it
   * is neither pinged nor told about a missing pong afterwards.
   */
  private tick(): void {
    const c = this.cursor;
    const pingSlot = c % this.pingSlots.length;
    const pongSlot = c % this.pongSlots.length;
    const due = this.pongSlots[pongSlot]!;
    if (due.size > 0) {
      const late = [...due];
      due.clear();
      for (const h of late) {
        if (h.hbPongSlot !== pongSlot) continue; // removed meanwhile
        h.hbPongSlot = -1;
        if (h.awaitingPong) h.onNoPong();
      }
    }
    const nextPong = this.pongDelay > 0 ? (c + this.pongDelay) % this.pongSlots.length : -1;
    for (const h of this.pingSlots[pingSlot]!) {
      h.sendPing();
      if (h.hbSlot !== pingSlot) continue; // removed by its own ping (a closed connection)
      if (nextPong >= 0) {
        h.awaitingPong = true;
        h.hbPongSlot = nextPong;
        this.pongSlots[nextPong]!.add(h);
      }
    }
    this.cursor = c + 1;
  }
}
