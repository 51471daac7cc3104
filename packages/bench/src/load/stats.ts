import * as hdr from 'hdr-histogram-js';
import type { BenchPayload, WorkerReport } from '../types.js';
import { nowMicros } from '../types.js';

/** Histograms record latencies in µs, up to 2 minutes, 3 significant digits. */
export function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3, bitBucketSize: 32 });
}

/** Per connection, per channel: the last sequence seen and the stream position for recovery. */
export interface ChannelState {
  name: string;
  last: number;
  offset: number;
  epoch: string;
}

/** One worker's counters; every client funnels deliveries through `deliver`. */
export class DeliveryStats {
  hist = newHistogram();
  unique = 0;
  dup = 0;
  gaps = 0;
  unexpectedCloses = 0;
  closeCodes: Record<string, number> = {};
  notRecovered = 0;

  deliver(st: ChannelState, data: BenchPayload | undefined): void {
    if (!data || typeof data.s !== 'number') return;
    if (data.s <= st.last) {
      this.dup++;
      return;
    }
    if (data.s > st.last + 1 && st.last !== 0) this.gaps += data.s - st.last - 1;
    st.last = data.s;
    this.unique++;
    const lat = nowMicros() - data.t;
    this.hist.recordValue(lat < 1 ? 1 : lat);
  }

  closed(code: number): void {
    this.unexpectedCloses++;
    this.closeCodes[code] = (this.closeCodes[code] ?? 0) + 1;
  }

  reset(): void {
    this.hist.reset();
    this.unique = 0;
    this.dup = 0;
    this.gaps = 0;
    this.unexpectedCloses = 0;
    this.closeCodes = {};
    this.notRecovered = 0;
  }

  report(openConns: number): WorkerReport {
    return {
      unique: this.unique,
      dup: this.dup,
      gaps: this.gaps,
      hist: hdr.encodeIntoCompressedBase64(this.hist),
      unexpectedCloses: this.unexpectedCloses,
      closeCodes: this.closeCodes,
      openConns,
      notRecovered: this.notRecovered,
    };
  }
}
