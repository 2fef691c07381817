// One connection to rtserver (docs/protocol.md) that stays up: requests (requests.js) and their replies,
// events to listeners, reconnection with backoff, and its token renewed before it runs out.

import { chooseCodec } from "./codec.js";
import { RequestError, SignInError } from "./errors.js";
import { Requests } from "./requests.js";
import { renewWait, retryWait } from "./timing.js";
import { clockSkew, tokenExp } from "./token.js";

const DEFAULTS = {
  codec: "auto",
  requestTimeout: 15000,
  // Tornado pings at the protocol level, which a page cannot see; an application-level ping finds
  // a half-open socket (a laptop waking up, a dropped NAT entry) that would otherwise look up.
  pingInterval: 30000,
  backoffFirst: 500,
  backoffMax: 15000,
  // Over the server's per-connection rate (--rate-limit, 50/s by default, bursts of 100) a
  // request is refused and does nothing; catching up many rooms at once can get there.
  rateLimitRetries: 3,
  rateLimitWait: 1000,
  // The server works on at most 16 requests of one socket at once and refuses the rest: the
  // others wait here for their turn.
  maxInFlight: 16,
  // The token is renewed (`auth.refresh`) a minute before its `exp`, or a fifth of its time
  // before for a short-lived one.
  refreshLead: 60,
};
// The server closes a socket with 4001 when its token's exp passes.
const TOKEN_EXPIRED = 4001;
// The code this client closes a socket with when the server stopped answering it: no hello in
// `requestTimeout` of opening (an upgrade nobody answers waits for ever), or no pong.
const NO_ANSWER = 4000;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout's longest wait (some 24 days): longer ones in steps

export class Client {
  /**
   * `url`: the server (`https://host`) or its socket (`wss://host/ws`); on a page it defaults to
   * the page's own server. `token`, or `getToken(fresh)` returning (a promise of) the token to
   * connect with, where `fresh` asks for a new one: to renew the token before it runs out, after
   * the server closed the socket because it had, and after a socket was refused before it opened.
   * `WebSocket` and `msgpack` default to the global WebSocket and `@msgpack/msgpack`.
   */
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.url = socketUrl(options.url);
    this.token = options.token ?? null; // the socket's token: the one it opened with, or refreshed
    this.getToken = options.getToken ?? (async () => this.token);
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (!this.WebSocket) {
      throw new Error("no WebSocket here: pass one (Node 20: --experimental-websocket, or the ws package)");
    }
    this.codec = null;
    this.requests = new Requests(this.options.maxInFlight);
    this.listeners = new Map();
    this.socket = null;
    this.opened = false; // the current socket got past the upgrade
    this.connected = false; // the current socket has said hello
    this.stopped = true;
    this.failures = 0;
    this.everOnline = false;
    this.clockSkew = 0; // the server's clock minus ours, in seconds, from hello's server_time
    this.signedIn = null;
  }

  /** The sub-protocol spoken, once `connect` has chosen it: "rp.v1.msgpack" or "rp.v1.json". */
  get protocol() {
    return this.codec ? this.codec.protocol : null;
  }

  /** Listen to an event (`hello`, `message`, …, `status`, `reconnected`); returns the `off`. */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.off(name, fn);
  }

  off(name, fn) {
    this.listeners.get(name)?.delete(fn);
  }

  emit(name, value) {
    for (const fn of this.listeners.get(name) || []) {
      try {
        fn(value);
      } catch (err) {
        console.error(`listener of ${name} failed`, err);
      }
    }
  }

  /**
   * Connect, and stay connected until `close`. Resolves with the first `hello`; rejects with a
   * SignInError when the client gives up before ever getting one (see SignInError).
   */
  connect() {
    if (this.signedIn) return this.signedIn;
    this.stopped = false;
    this.signedIn = new Promise((resolve, reject) => {
      this.signInDone = { resolve, reject };
    });
    chooseCodec(this.options.codec, this.options.msgpack).then((codec) => {
      this.codec = codec;
      this.open(false);
    }, (err) => this.giveUp(err));
    return this.signedIn;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopTimers();
    if (this.socket) this.socket.close(1000, "bye");
    this.socket = null;
    this.connected = false;
    this.requests.failAll("closed");
    this.signInDone?.reject(new SignInError("closed before signing in"));
    this.signedIn = null;
    this.emit("status", "closed");
  }

  giveUp(err) {
    this.signInDone.reject(err);
    this.close();
  }

  async open(freshToken) {
    this.emit("status", this.everOnline ? "reconnecting" : "connecting");
    let token;
    try {
      token = await this.getToken(freshToken);
    } catch (err) {
      if (this.stopped) return;
      if (!this.everOnline) return this.giveUp(new SignInError("getToken failed", err));
      return this.retryLater(true);
    }
    if (this.stopped) return;
    this.token = token;
    const url = new URL(this.url);
    url.searchParams.set("token", token);
    const socket = new this.WebSocket(url.href, [this.codec.protocol]);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.opened = false;
    this.helloTimer = setTimeout(() => this.abandon(socket, "no hello"), this.options.requestTimeout);
    socket.onopen = () => {
      if (this.socket === socket) this.opened = true;
    };
    socket.onmessage = (msg) => {
      if (this.socket !== socket) return;
      let frame;
      try {
        frame = this.codec.decode(msg.data);
      } catch (err) {
        console.error("undecodable frame", err);
        return;
      }
      if (frame.ev === "hello") this.onHello(frame);
      else this.dispatch(frame);
    };
    socket.onclose = (ev) => this.lost(socket, ev.code, ev.reason);
    // A refused upgrade is an error; browsers follow it with a close, Node 20's WebSocket does not.
    socket.onerror = () => this.opened || this.lost(socket, 1006, "");
  }

  onHello(hello) {
    // The connection counts as up once the server has said who we are.
    const again = this.everOnline;
    clearTimeout(this.helloTimer);
    this.connected = true;
    this.failures = 0;
    this.everOnline = true;
    this.clockSkew = clockSkew(hello.server_time);
    this.startPinging();
    this.planRefresh(tokenExp(this.token));
    this.emit("status", "online");
    this.emit("hello", hello);
    if (again) this.emit("reconnected", hello);
    this.signInDone.resolve(hello);
  }

  /** The socket is gone (closed by either side, or given up on): fail its requests, try again. */
  lost(socket, code, reason) {
    if (this.socket !== socket) return;
    this.socket = null;
    this.connected = false;
    this.stopTimers();
    this.requests.failAll("disconnected");
    if (this.stopped) return;
    this.emit("disconnected", { code, reason });
    if (!this.opened && !this.everOnline && this.failures >= 2) {
      // Never got in: the token or the user is refused; retrying the same will not help.
      return this.giveUp(new SignInError("the server refused the socket: an unknown user, a token it does not take, or no server"));
    }
    this.retryLater(!this.opened || code === TOKEN_EXPIRED);
  }

  /** Open a socket again after a wait that doubles with each failure (timing.js). */
  retryLater(freshToken) {
    this.failures += 1;
    this.emit("status", "offline");
    const { backoffFirst, backoffMax } = this.options;
    this.retryTimer = setTimeout(() => this.open(freshToken),
      retryWait(this.failures, backoffFirst, backoffMax));
  }

  stopTimers() {
    clearTimeout(this.helloTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.refreshTimer);
  }

  /**
   * Give up on a socket the server stopped answering, without waiting for its closing handshake,
   * which cannot finish on a half-open socket.
   */
  abandon(socket, reason) {
    this.lost(socket, NO_ANSWER, reason); // first: closing may say "error" at once
    socket.close(NO_ANSWER, reason);
  }

  dispatch(frame) {
    if (!this.requests.answer(frame) && frame.ev) this.emit(frame.ev, frame);
  }

  /**
   * Send a request; resolves with the successful reply frame (`{re, ok: true, ...result}`) and
   * rejects with a RequestError. A `rate_limited` refusal did nothing on the server, so it is sent
   * again a little later; at most `maxInFlight` requests are out at once, the rest wait their turn.
   */
  async request(op, args = {}, { timeout = this.options.requestTimeout } = {}) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.requests.send(op, args, timeout, (frame) => this.transmit(op, frame));
      } catch (err) {
        if (err.code !== "rate_limited" || attempt > this.options.rateLimitRetries) throw err;
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.rateLimitWait * attempt));
    }
  }

  /** Put a request on the socket, when there is one that has said hello. */
  transmit(op, frame) {
    if (!this.connected) throw new RequestError(op, "disconnected", "not connected");
    this.socket.send(this.codec.encode(frame));
  }

  /** Renew the socket's token shortly before `exp` (the server's clock), so it is never closed. */
  planRefresh(exp) {
    clearTimeout(this.refreshTimer);
    if (!exp) return;
    const wait = renewWait(exp, this.clockSkew, this.options.refreshLead);
    this.refreshTimer = setTimeout(() => (wait > MAX_TIMER_MS ? this.planRefresh(exp) : this.renew()),
      Math.min(wait, MAX_TIMER_MS));
  }

  /**
   * Ask for a new token and give it to the socket. A failure is told as `refresh_failed`; then the
   * server closes the socket when its token ends, and the reconnection asks again.
   */
  async renew() {
    try {
      const token = await this.getToken(true);
      if (token !== this.token) await this.refresh(token);
    } catch (err) {
      this.emit("refresh_failed", err);
    }
  }

  /**
   * Give the open socket a new token of the same user (`auth.refresh`); resolves with the reply
   * (`exp`, the new token's) and emits `refreshed` with it. A refusal (`forbidden`: another user's;
   * `unauthorized`: one the server does not take) changes nothing.
   */
  async refresh(token) {
    const reply = await this.request("auth.refresh", { token });
    this.token = token;
    this.planRefresh(reply.exp);
    this.emit("refreshed", reply);
    return reply;
  }

  startPinging() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(async () => {
      const socket = this.socket;
      try {
        await this.request("ping");
      } catch (err) {
        if (err.code === "timeout" && this.socket === socket) this.abandon(socket, "no pong");
      }
    }, this.options.pingInterval);
  }
}

/** The socket's URL: `/ws` of the server named (ws: for http:, wss: for https:), or of the page's. */
function socketUrl(given) {
  const url = new URL(given ?? "/ws", globalThis.location?.href);
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  if (url.pathname === "/") url.pathname = "/ws";
  return url.href;
}
