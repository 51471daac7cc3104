import type { Command } from '../protocol/commands.js';

/** Bound on frames waiting to be processed: a client that floods faster than we answer is cut off. */
const MAX_PENDING_FRAMES = 256;

/** What the inbox asks of its connection. */
export interface InboxOwner {
  /** Handles one command to the end (its reply queued or the connection closed). */
  handle(cmd: Command): Promise<void>;
  /** A failure outside any command's handling (a bug). */
  failed(e: unknown): void;
  closed(): boolean;
}

interface Entry {
  readonly cmd: Command;
  /** Commands of the entry's frame not finished yet. */
  readonly frame: { left: number };
}

/**
 * The commands of one connection waiting to be handled (client.concurrency).
 *
 * Up to 1: one after another in arrival order, as centrifuge does by default;
 * each reply goes out before the next command starts.
 *
 * Above 1: up to that many commands of the connection in flight at once, so
 * a slow RPC or proxied subscribe does not hold up the commands behind it.
 * Replies go out as each finishes; the client matches them by id. `connect`
 * runs alone (nothing after it starts before the connection is set up).
 */
export class CommandInbox {
  private pendingFrames = 0;
  private chain: Promise<void> | undefined;
  private queue: Entry[] = [];
  private head = 0;
  private running = 0;
  private exclusive = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly owner: InboxOwner,
  ) {}

  /** Queues a frame's commands; false when too many frames wait already (the caller disconnects). */
  push(commands: Command[]): boolean {
    if (++this.pendingFrames > MAX_PENDING_FRAMES) return false;
    if (this.concurrency <= 1) {
      const run = (): Promise<void> => this.inOrder(commands);
      this.chain = (this.chain ? this.chain.then(run) : run()).catch((e: unknown) => this.owner.failed(e));
      return true;
    }
    const frame = { left: commands.length };
    for (const cmd of commands) this.queue.push({ cmd, frame });
    this.pump();
    return true;
  }

  /** Resolves once every command pushed so far has been handled. */
  idle(): Promise<void> {
    if (this.concurrency <= 1) return this.chain ?? Promise.resolve();
    if (this.running === 0 && this.head === this.queue.length) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async inOrder(commands: Command[]): Promise<void> {
    try {
      for (const cmd of commands) {
        if (this.owner.closed()) return;
        await this.owner.handle(cmd);
      }
    } finally {
      this.pendingFrames--;
    }
  }

  private pump(): void {
    while (!this.exclusive && this.running < this.concurrency && this.head < this.queue.length) {
      if (this.owner.closed()) {
        this.queue = [];
        this.head = 0;
        break;
      }
      const entry = this.queue[this.head]!;
      const alone = entry.cmd.method === 'connect';
      if (alone && this.running > 0) return; // starts once the commands in flight are done
      this.queue[this.head++] = undefined as unknown as Entry;
      this.running++;
      if (alone) this.exclusive = true;
      this.owner
        .handle(entry.cmd)
        .catch((e: unknown) => this.owner.failed(e))
        .finally(() => {
          this.running--;
          if (alone) this.exclusive = false;
          if (--entry.frame.left === 0) this.pendingFrames--;
          this.pump();
        });
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      if (this.running === 0 && this.idleWaiters.length > 0) for (const w of this.idleWaiters.splice(0)) w();
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
