// An `rtserver serve` of a test's own, to stop and start again on its port: the command line
// comes from RTSERVER_SERVE (a JSON list, set by tests/test_js_client.py; the database, Redis and
// secrets from the environment, as for the other servers).

import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";

export const COMMAND = process.env.RTSERVER_SERVE ? JSON.parse(process.env.RTSERVER_SERVE) : null;
const START_TIMEOUT_MS = 20000;
const LOG_KEPT = 4000; // characters of its output kept, for the failure message

export class OwnServer {
  static async start(t) {
    const server = new OwnServer(await freePort());
    t.after(() => server.stop());
    await server.start();
    return server;
  }

  constructor(port) {
    this.port = port;
    this.child = null;
    this.log = "";
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Start it, and wait until /healthz answers 200. */
  async start() {
    this.child = spawn(COMMAND[0], [...COMMAND.slice(1), `--port=${this.port}`],
      { stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream.on("data", (chunk) => {
        this.log = (this.log + chunk).slice(-LOG_KEPT);
      });
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await this.healthy())) {
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`rtserver serve did not start:\n${this.log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async healthy() {
    try {
      return (await fetch(`${this.url}/healthz`)).status === 200;
    } catch {
      return false; // not listening yet
    }
  }

  /** SIGTERM, as a deployment stops it: its sockets are closed with 1001; wait for the exit. */
  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.kill("SIGTERM");
    await exited;
  }
}

function freePort() {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}
