// The requests of one client: ids, replies matched by `re`, time-outs, and the in-flight cap.

import { RequestError } from "./errors.js";

export class Requests {
  constructor(maxInFlight) {
    this.maxInFlight = maxInFlight;
    this.nextId = 1;
    this.pending = new Map(); // id → the waiting request
    this.inFlight = 0;
    this.waiting = []; // resolvers of requests waiting for their turn
  }

  /**
   * Send `op` with `transmit(frame)` once fewer than `maxInFlight` are out; resolves with the
   * successful reply, rejects with a RequestError (the refusal, or no reply within `timeout` ms).
   */
  async send(op, args, timeout, transmit) {
    while (this.inFlight >= this.maxInFlight) await new Promise((go) => this.waiting.push(go));
    this.inFlight++;
    try {
      return await this.sendNow(op, args, timeout, transmit);
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  sendNow(op, args, timeout, transmit) {
    const id = this.nextId++;
    transmit({ ...args, op, id });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestError(op, "timeout", `no reply in ${timeout} ms`));
      }, timeout);
      this.pending.set(id, { op, resolve, reject, timer });
    });
  }

  /** Settle the request `frame` answers; false when it answers none (an event, a late reply). */
  answer(frame) {
    const waiting = frame.re !== undefined && this.pending.get(frame.re);
    if (!waiting) return false;
    this.pending.delete(frame.re);
    clearTimeout(waiting.timer);
    if (frame.ok) waiting.resolve(frame);
    else waiting.reject(new RequestError(waiting.op, frame.code, frame.message, frame));
    return true;
  }

  /** The socket went (`why`: "closed", "disconnected"): what waits for a reply will not get one. */
  failAll(why) {
    for (const { op, reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new RequestError(op, "disconnected", `the socket ${why} before the reply came`));
    }
    this.pending.clear();
  }
}
