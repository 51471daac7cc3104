import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Sample } from './api.js';
import { h } from './dom.js';

interface Line {
  readonly label: string;
  readonly value: (s: Sample) => number;
  readonly color: string;
}

/** A uPlot line chart of some sample fields over time; `update` redraws it with the server's samples. */
export class Chart {
  readonly el: HTMLElement;
  private plot: uPlot | undefined;

  constructor(
    readonly title: string,
    private readonly lines: readonly Line[],
    private readonly testid: string,
  ) {
    this.el = h('div', { class: 'chart', 'data-testid': testid }, h('h3', {}, title));
  }

  update(samples: readonly Sample[]): void {
    const data: uPlot.AlignedData = [samples.map((s) => s.t / 1000), ...this.lines.map((l) => samples.map((s) => l.value(s)))];
    if (!this.plot) {
      this.plot = new uPlot(
        {
          width: 460,
          height: 180,
          series: [{}, ...this.lines.map((l) => ({ label: l.label, stroke: l.color, width: 2 }))],
          axes: [{}, { size: 50 }],
          scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
        },
        data,
        this.el,
      );
      this.el.dataset.points = String(samples.length);
      return;
    }
    this.plot.setData(data);
    this.el.dataset.points = String(samples.length);
  }
}

export function charts(): Chart[] {
  return [
    new Chart(
      'Connections (all nodes)',
      [
        { label: 'clients', value: (s) => s.clients, color: '#2563eb' },
        { label: 'users', value: (s) => s.users, color: '#16a34a' },
        { label: 'subscriptions', value: (s) => s.subs, color: '#d97706' },
      ],
      'chart-connections',
    ),
    new Chart(
      'Throughput per second (this node)',
      [
        { label: 'publications', value: (s) => s.publications_per_s, color: '#7c3aed' },
        { label: 'deliveries', value: (s) => s.deliveries_per_s, color: '#db2777' },
        { label: 'API commands', value: (s) => s.api_commands_per_s, color: '#0891b2' },
      ],
      'chart-throughput',
    ),
  ];
}
