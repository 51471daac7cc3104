import type { Broker, ControlMessage } from '../engine/types.js';
import type { EmulationRequest } from '../transport/emulation.js';

type Forwarded = Extract<ControlMessage, { type: 'emulation' }>;
type Ack = Extract<ControlMessage, { type: 'emulation_ack' }>;

/** How long a forwarding node waits for the holder's answer before giving up (504). */
const ACK_TIMEOUT_MS = 5000;

/**
 * Emulation requests between nodes (no sticky sessions behind a balancer):
 * a node that gets `/emulation` for a session it does not hold publishes it
 * on the engine's control channel for the node named in it, and waits for
 * that node's ack, so the client learns when the session is unknown there
 * too (as centrifuge surveys the node). Every node sees the control
 * message; only the named one delivers and answers.
 */
export class EmulationRelay {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (found: boolean | undefined) => void; timer: NodeJS.Timeout }>();

  constructor(
    private readonly nodeId: string,
    private readonly broker: Broker,
    /** Hands a request to a session of this node; false when no such session is here. */
    private readonly deliver: (er: EmulationRequest) => boolean,
    private readonly timeoutMs = ACK_TIMEOUT_MS,
  ) {}

  /**
   * Sends the request to its node; resolves whether the session was there,
   * or undefined when no answer came in time (no such node, or it is gone).
   * Rejects when the control channel is unavailable.
   */
  async forward(er: EmulationRequest): Promise<boolean | undefined> {
    const id = ++this.nextId;
    const answered = new Promise<boolean | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, timer });
    });
    try {
      await this.broker.publishControl({
        type: 'emulation',
        node: er.node,
        session: er.session,
        data: er.data.toString(er.binary ? 'base64' : 'utf8'),
        binary: er.binary || undefined,
        from: this.nodeId,
        id,
      });
    } catch (e) {
      const p = this.pending.get(id);
      if (p) clearTimeout(p.timer);
      this.pending.delete(id);
      throw e;
    }
    return answered;
  }

  /** A control message of the relay's kinds (false for any other kind). */
  onControl(msg: ControlMessage): boolean {
    if (msg.type === 'emulation') {
      if (msg.node === this.nodeId) this.received(msg);
      return true;
    }
    if (msg.type === 'emulation_ack') {
      if (msg.node !== this.nodeId) return true;
      const p = this.pending.get(msg.id);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(msg.id);
        p.resolve(msg.found);
      }
      return true;
    }
    return false;
  }

  private received(msg: Forwarded): void {
    const binary = !!msg.binary;
    const found = this.deliver({ node: msg.node, session: msg.session, data: Buffer.from(msg.data, binary ? 'base64' : 'utf8'), binary });
    const ack: Ack = { type: 'emulation_ack', node: msg.from, id: msg.id, found };
    this.broker.publishControl(ack).catch(() => {
      // the forwarding node times out and answers 504
    });
  }
}
