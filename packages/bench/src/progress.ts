/** One status line on stderr while the harness runs (rewritten in place on a TTY). */
export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private text = '';
  private lastPrinted = 0;
  private readonly tty = process.stderr.isTTY === true;
  private readonly t0 = performance.now();

  constructor(private readonly quiet = false) {}

  set(text: string): void {
    this.text = text;
    this.print(false);
  }

  private print(tick: boolean): void {
    if (this.quiet) return;
    const el = ((performance.now() - this.t0) / 1000).toFixed(0).padStart(4);
    const line = `[${el}s] ${this.text}`;
    if (this.tty) {
      const cols = process.stderr.columns ?? 120;
      process.stderr.write(`\r\x1b[K${line.slice(0, cols - 1)}`);
    } else if (!tick || performance.now() - this.lastPrinted > 5000) {
      process.stderr.write(`${line}\n`);
      this.lastPrinted = performance.now();
    }
  }

  /** Re-render every second with a dynamic suffix from `extra`. */
  start(extra: () => string): void {
    this.stop();
    const base = this.text;
    this.timer = setInterval(() => {
      this.text = `${base} ${extra()}`;
      this.print(true);
    }, 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  done(): void {
    this.stop();
    if (this.quiet) return;
    if (this.tty) process.stderr.write('\r\x1b[K');
  }

  log(msg: string): void {
    if (this.quiet) return;
    if (this.tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`${msg}\n`);
    if (this.tty && this.text) this.print(true);
  }
}
