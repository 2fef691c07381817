// A TCP proxy in front of the server that the tests break: it cuts every connection (the network
// dropped, the server went away), freezes them (half-open: frames go nowhere, nobody is told),
// and thaws them, refuses new ones (the server is down) or takes them and never answers.

import net from "node:net";

export class Proxy {
  static async start(t, target) {
    const proxy = new Proxy(new URL(target));
    await new Promise((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    t.after(() => proxy.close());
    return proxy;
  }

  constructor(target) {
    this.target = target;
    this.pairs = new Set();
    this.refusing = false;
    this.silent = false;
    this.server = net.createServer((client) => this.accept(client));
  }

  get url() {
    return `http://127.0.0.1:${this.server.address().port}`;
  }

  accept(client) {
    if (this.refusing) return client.destroy();
    // Silent: the connection is held, and what comes in goes nowhere.
    const upstream = this.silent ? null : net.connect(Number(this.target.port), this.target.hostname);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream?.destroy();
      this.pairs.delete(pair);
    };
    for (const socket of [client, upstream]) socket?.on("error", end).on("close", end);
    if (upstream) this.pipe(pair);
  }

  cut() {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream?.destroy();
    }
  }

  freeze() {
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream?.unpipe(client);
    }
  }

  thaw() {
    for (const pair of this.pairs) if (pair.upstream) this.pipe(pair);
  }

  pipe({ client, upstream }) {
    client.pipe(upstream);
    upstream.pipe(client);
  }

  close() {
    this.cut();
    return new Promise((resolve) => this.server.close(resolve));
  }
}
