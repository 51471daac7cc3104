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

/** The commands of one connection waiting to be handled (client.concurrency); see `commandInbox`. */
export interface CommandInbox {
  /** Queues a frame's commands; false when too many frames wait already (the caller disconnects). */
  push(commands: Command[]): boolean;
  /** Resolves once every command pushed so far has been handled. */
  idle(): Promise<void>;
}

/**
 * The inbox for client.concurrency.
 *
 * Up to 1: one after another in arrival order, as centrifuge does by default;
 * each reply goes out before the next command starts.
 *
 * Above 1: up to that many commands of the connection in flight at once, so
 * a slow RPC or proxied subscribe does not hold up the commands behind it.
 * Replies go out as each finishes; the client matches them by id. `connect`
 * runs alone (nothing after it starts before the connection is set up).
 *
 * Two classes, so an in-order connection (the default) holds only what it
 * uses: every connection has an inbox, and each field is 8 bytes of it.
 */
export function commandInbox(concurrency: number, owner: InboxOwner): CommandInbox {
  return concurrency <= 1 ? new SerialInbox(owner) : new ConcurrentInbox(concurrency, owner);
}

class SerialInbox implements CommandInbox {
  private pendingFrames = 0;
  /** The last frame's run; dropped once it is done, so an idle connection keeps no settled promise. */
  private chain: Promise<void> | undefined;

  constructor(private readonly owner: InboxOwner) {}

  push(commands: Command[]): boolean {
    if (++this.pendingFrames > MAX_PENDING_FRAMES) return false;
    const run = (): Promise<void> => this.inOrder(commands);
    const p: Promise<void> = (this.chain ? this.chain.then(run) : run()).then(
      () => this.done(p),
      (e: unknown) => {
        this.owner.failed(e);
        this.done(p);
      },
    );
    this.chain = p;
    return true;
  }

  idle(): Promise<void> {
    return this.chain ?? Promise.resolve();
  }

  private done(p: Promise<void>): void {
    if (this.chain === p) this.chain = undefined;
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
}

class ConcurrentInbox implements CommandInbox {
  private pendingFrames = 0;
  private readonly queue: Entry[] = [];
  private head = 0;
  private running = 0;
  private exclusive = false;
  private idleWaiters: Array<() => void> | undefined;

  constructor(
    private readonly concurrency: number,
    private readonly owner: InboxOwner,
  ) {}

  push(commands: Command[]): boolean {
    if (++this.pendingFrames > MAX_PENDING_FRAMES) return false;
    const frame = { left: commands.length };
    const queue = this.queue;
    for (const cmd of commands) queue.push({ cmd, frame });
    this.pump(queue);
    return true;
  }

  idle(): Promise<void> {
    if (this.running === 0 && this.head === this.queue.length) return Promise.resolve();
    return new Promise((resolve) => (this.idleWaiters ??= []).push(resolve));
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
