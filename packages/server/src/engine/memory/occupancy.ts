import type { ChannelOccupancy } from '../types.js';

/** Occupancy in one process: a set of nodes per channel (nodes never die without telling it, so nothing lapses). */
export class MemoryOccupancy implements ChannelOccupancy {
  private readonly nodes = new Map<string, Set<string>>();

  async occupy(channel: string, node: string): Promise<boolean> {
    let s = this.nodes.get(channel);
    if (!s) this.nodes.set(channel, (s = new Set()));
    const first = s.size === 0;
    s.add(node);
    return first;
  }

  async vacate(channel: string, node: string): Promise<boolean> {
    const s = this.nodes.get(channel);
    if (!s || !s.delete(node)) return false;
    if (s.size > 0) return false;
    this.nodes.delete(channel);
    return true;
  }

  async refresh(_channels: readonly string[], _node: string): Promise<string[]> {
    return [];
  }

  async sweep(): Promise<string[]> {
    return [];
  }
}
