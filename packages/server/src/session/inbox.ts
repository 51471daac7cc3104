import type { Command } from '../protocol/commands.js';

/** Bound on frames waiting to be processed: a client that floods faster than we answer is cut off. */
const MAX_PENDING_FRAMES = 256;

/** What the inbox asks of its connection (the session itself: no closures per connection). */
export interface InboxOwner {
  /** Handles one command to the end (its reply queued or the connection closed). */
  handle(cmd: Command): Promise<void>;
  /** A failure outside any command's handling (a bug). */
  failed(e: unknown): void;
  readonly state: string;
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
  // Made only when commands overlap (client.concurrency > 1): an idle connection holds none of it.
  private queue: Entry[] | undefined;
  private head = 0;
  private running = 0;
  private exclusive = false;
  private idleWaiters: Array<() => void> | undefined;

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
    const queue = (this.queue ??= []);
    for (const cmd of commands) queue.push({ cmd, frame });
    this.pump(queue);
    return true;
  }

  /** Resolves once every command pushed so far has been handled. */
  idle(): Promise<void> {
    if (this.concurrency <= 1) return this.chain ?? Promise.resolve();
    if (this.running === 0 && this.head === (this.queue?.length ?? 0)) return Promise.resolve();
    return new Promise((resolve) => (this.idleWaiters ??= []).push(resolve));
  }

  private async inOrder(commands: Command[]): Promise<void> {
    try {
      for (const cmd of commands) {
        if (this.owner.state === 'closed') return;
        await this.owner.handle(cmd);
      }
    } finally {
      this.pendingFrames--;
    }
  }

  private pump(queue: Entry[]): void {
    while (!this.exclusive && this.running < this.concurrency && this.head < queue.length) {
      if (this.owner.state === 'closed') {
        queue.length = 0;
        this.head = 0;
        break;
      }
      const entry = queue[this.head]!;
      const alone = entry.cmd.method === 'connect';
      if (alone && this.running > 0) return; // starts once the commands in flight are done
      queue[this.head++] = undefined as unknown as Entry;
      this.running++;
      if (alone) this.exclusive = true;
      this.owner
        .handle(entry.cmd)
        .catch((e: unknown) => this.owner.failed(e))
        .finally(() => {
          this.running--;
          if (alone) this.exclusive = false;
          if (--entry.frame.left === 0) this.pendingFrames--;
          this.pump(queue);
        });
    }
    if (this.head === queue.length) {
      queue.length = 0;
      this.head = 0;
      if (this.running === 0 && this.idleWaiters) for (const w of this.idleWaiters.splice(0)) w();
    } else if (this.head > 1024 && this.head * 2 > queue.length) {
      queue.splice(0, this.head);
      this.head = 0;
    }
  }
}
