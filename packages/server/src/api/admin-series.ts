import type { Switchboard } from '../node.js';

/** One sample of the dashboard's charts. */
export interface Sample {
  /** Unix ms. */
  readonly t: number;
  /** Cluster totals (every node the registry lists). */
  readonly nodes: number;
  readonly clients: number;
  readonly users: number;
  readonly subs: number;
  /** This node's rates per second since the previous sample. */
  readonly publications_per_s: number;
  readonly deliveries_per_s: number;
  readonly api_commands_per_s: number;
}

/**
 * The key metrics over the last minutes, sampled on the server so that the
 * charts are there when the dashboard opens. Runs only while the admin UI is
 * enabled; one sample per interval, a bounded ring.
 */
export class MetricsSeries {
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private prev: { t: number; pubs: number; deliveries: number; api: number } | undefined;
  private busy = false;

  constructor(
    private readonly sb: Switchboard,
    readonly intervalMs = 2000,
    readonly keep = 150,
  ) {}

  start(): void {
    if (this.timer) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  list(): readonly Sample[] {
    return this.samples;
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const t = Date.now();
      const nodes = await this.sb.info().catch(() => [this.sb.nodeInfo()]);
      const pubs = await total(this.sb.metrics.publications);
      const api = await total(this.sb.metrics.apiCommands);
      const deliveries = this.sb.hub.deliveries;
      const prev = this.prev;
      const dt = prev ? Math.max(0.001, (t - prev.t) / 1000) : 1;
      const rate = (now: number, before: number | undefined) => (before === undefined ? 0 : Math.max(0, (now - before) / dt));
      this.samples.push({
        t,
        nodes: nodes.length,
        clients: nodes.reduce((n, x) => n + x.numClients, 0),
        users: nodes.reduce((n, x) => n + x.numUsers, 0),
        subs: nodes.reduce((n, x) => n + x.numSubs, 0),
        publications_per_s: rate(pubs, prev?.pubs),
        deliveries_per_s: rate(deliveries, prev?.deliveries),
        api_commands_per_s: rate(api, prev?.api),
      });
      if (this.samples.length > this.keep) this.samples.shift();
      this.prev = { t, pubs, deliveries, api };
    } finally {
      this.busy = false;
    }
  }
}

async function total(metric: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await metric.get()).values.reduce((n, v) => n + v.value, 0);
}
