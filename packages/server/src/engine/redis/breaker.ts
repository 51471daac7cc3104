/**
 * A circuit breaker in front of one Redis shard. After `threshold`
 * consecutive failures (timeouts, lost connections) it opens: commands fail
 * at once instead of piling up for io_timeout each. After `cooldownMs` one
 * command goes through as a probe (half-open); its success closes the
 * breaker, its failure opens it for another cooldown.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private probing = false;
  /** Called when the breaker opens or closes. */
  onChange: ((open: boolean) => void) | undefined;

  constructor(
    private readonly threshold: number,
    readonly cooldownMs: number,
  ) {}

  get open(): boolean {
    return this.openUntil > 0;
  }

  /** May a command go to Redis now? (Claims the probe slot when half-open.) */
  allow(now = Date.now()): boolean {
    if (this.openUntil === 0) return true;
    if (now < this.openUntil || this.probing) return false;
    this.probing = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
    if (this.openUntil !== 0) {
      this.openUntil = 0;
      this.onChange?.(false);
    }
  }

  failure(now = Date.now()): void {
    this.probing = false;
    this.failures++;
    if (this.threshold > 0 && this.failures >= this.threshold) {
      const wasOpen = this.openUntil !== 0;
      this.openUntil = now + this.cooldownMs;
      if (!wasOpen) this.onChange?.(true);
    }
  }
}
