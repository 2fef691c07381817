// The socket to rtserver (PROTOCOL.md): requests matched to replies by id, events to listeners,
// msgpack when its library loaded (else JSON), reconnection with backoff, and its token renewed
// before it runs out.

const MSGPACK = "rp.v1.msgpack";
const JSON_PROTOCOL = "rp.v1.json";
const REQUEST_TIMEOUT_MS = 15000;
// Tornado pings at the protocol level, which a page cannot see; an application-level ping finds a
// half-open socket (a laptop waking up, a dropped NAT entry) that would otherwise look connected.
const PING_EVERY_MS = 30000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;
// Over the server's per-connection rate (--rate-limit, 50/s by default, bursts of 100) a
// request is refused and does nothing; catching up many rooms at once can get there.
const RATE_LIMIT_RETRIES = 3;
const RATE_LIMIT_WAIT_MS = 1000;
// The server works on at most 16 requests of one socket at once and refuses the rest: the
// others wait here for their turn.
const MAX_IN_FLIGHT = 16;
// The server closes a socket with 4001 when its token's exp passes. The token is renewed
// (`auth.refresh`) a minute before that, or a fifth of its time before for a short-lived one.
const TOKEN_EXPIRED = 4001;
const REFRESH_LEAD_S = 60;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout's longest wait (some 24 days): longer ones in steps

export class Connection {
  /**
   * `getToken(fresh)` returns the token to connect with (a promise); `fresh` asks for a new one:
   * to renew the token before it runs out, after the server closed the socket because it had, and
   * after a connection was refused before it opened, when an expired token is the likely cause.
   */
  constructor(getToken) {
    this.getToken = getToken;
    this.codec = window.MessagePack ? msgpackCodec(window.MessagePack) : jsonCodec();
    this.nextId = 1;
    this.pending = new Map();
    this.inFlight = 0;
    this.waiting = []; // resolvers of requests waiting for their turn
    this.listeners = new Map();
    this.socket = null;
    this.connected = false;
    this.stopped = false;
    this.failures = 0;
    this.everOpened = false;
    this.token = null; // the socket's token: the one it opened with, or the last one refreshed
    this.clockSkew = 0; // the server's clock minus ours, in seconds, from hello's server_time
  }

  get protocol() {
    return this.codec.protocol;
  }

  /** Listen to an event (`hello`, `message`, …) or to `status` changes; returns an unsubscribe. */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.listeners.get(name).delete(fn);
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

  start() {
    this.stopped = false;
    this.open(false);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.refreshTimer);
    if (this.socket) this.socket.close(1000, "bye");
    this.failAll("已退出");
  }

  async open(freshToken) {
    this.emit("status", this.everOpened ? "reconnecting" : "connecting");
    let token;
    try {
      token = await this.getToken(freshToken);
    } catch (err) {
      this.emit("signin_failed", err.message || String(err));
      return;
    }
    if (this.stopped) return;
    this.token = token;
    const url = new URL("/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", token);
    const socket = new WebSocket(url, [this.codec.protocol]);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (msg) => {
      let frame;
      try {
        frame = this.codec.decode(msg.data);
      } catch (err) {
        console.error("undecodable frame", err);
        return;
      }
      if (frame.ev === "hello") {
        // The connection counts as up once the server has said who we are.
        this.connected = true;
        this.failures = 0;
        this.everOpened = true;
        this.clockSkew = clockSkew(frame.server_time);
        this.startPinging();
        this.planRefresh(tokenExp(this.token));
        this.emit("status", "online");
      }
      this.dispatch(frame);
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.connected = false;
      clearInterval(this.pingTimer);
      clearTimeout(this.refreshTimer);
      this.failAll("连接已断开");
      if (this.stopped) return;
      if (!opened && !this.everOpened && this.failures >= 2) {
        // Never got in: the token or the user is refused; retrying the same will not help.
        this.emit("signin_failed", "登录失败：用户不存在、令牌无效或服务器不可用");
        return;
      }
      this.failures += 1;
      this.emit("status", "offline");
      const wait = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this.failures - 1));
      const jitter = wait * (0.75 + Math.random() / 2);
      this.retryTimer = setTimeout(() => this.open(!opened || ev.code === TOKEN_EXPIRED), jitter);
      console.info(`socket closed (${ev.code}); retrying in ${Math.round(jitter)} ms`);
    };
  }

  dispatch(frame) {
    if (frame.re !== undefined && this.pending.has(frame.re)) {
      const { resolve, timer } = this.pending.get(frame.re);
      this.pending.delete(frame.re);
      clearTimeout(timer);
      resolve(frame);
    } else if (frame.ev) {
      this.emit(frame.ev, frame);
    }
  }

  /**
   * Send a request; resolves with the reply frame, successful or not (check `ok`). While offline
   * it resolves at once with an `unavailable` failure, so callers have one path for every refusal.
   * A `rate_limited` answer did nothing on the server, so it is sent again a little later.
   */
  async request(op, args = {}) {
    for (let attempt = 1; ; attempt++) {
      const reply = await this.inTurn(() => this.requestOnce(op, args));
      if (reply.code !== "rate_limited" || attempt > RATE_LIMIT_RETRIES) return reply;
      await new Promise((resolve) => setTimeout(resolve, RATE_LIMIT_WAIT_MS * attempt));
    }
  }

  async inTurn(send) {
    while (this.inFlight >= MAX_IN_FLIGHT) await new Promise((go) => this.waiting.push(go));
    this.inFlight++;
    try {
      return await send();
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  requestOnce(op, args) {
    if (!this.connected) {
      return Promise.resolve({ ok: false, code: "unavailable", message: "未连接到服务器" });
    }
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, code: "unavailable", message: "请求超时", timedOut: true });
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, timer });
      this.socket.send(this.codec.encode({ op, id, ...args }));
    });
  }

  failAll(message) {
    for (const { resolve, timer } of this.pending.values()) {
      clearTimeout(timer);
      resolve({ ok: false, code: "unavailable", message });
    }
    this.pending.clear();
  }

  /** Renew the socket's token shortly before `exp` (the server's clock), so it is never closed. */
  planRefresh(exp) {
    clearTimeout(this.refreshTimer);
    if (!exp) return;
    const left = exp - (Date.now() / 1000 + this.clockSkew);
    const wait = 1000 * (left - Math.min(REFRESH_LEAD_S, left / 5));
    this.refreshTimer = setTimeout(() => (wait > MAX_TIMER_MS ? this.planRefresh(exp) : this.refresh()),
      Math.min(wait, MAX_TIMER_MS));
  }

  async refresh() {
    let token;
    try {
      token = await this.getToken(true);
    } catch (err) {
      // The socket is closed when its token ends, and the reconnection asks again.
      console.info("no new token yet", err);
      return;
    }
    if (token !== this.token) await this.refreshWith(token);
  }

  /** Give the open socket a new token of the same user (`auth.refresh`); resolves with the reply. */
  async refreshWith(token) {
    const reply = await this.request("auth.refresh", { token });
    if (reply.ok) {
      this.token = token;
      this.planRefresh(reply.exp);
    }
    return reply;
  }

  startPinging() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(async () => {
      const reply = await this.request("ping");
      if (reply.timedOut && this.socket) this.socket.close(4000, "no pong");
    }, PING_EVERY_MS);
  }
}

/**
 * How far the server's clock is ahead of ours. server_time is whole seconds, cut down, so the
 * server's now lies somewhere in the second after it: a skew under a second is only that
 * rounding, and trusting it would expire packets up to a second late or early.
 */
function clockSkew(serverTime) {
  const skew = serverTime + 0.5 - Date.now() / 1000;
  return Math.abs(skew) < 1 ? 0 : skew;
}

/** A JWT's `exp` (its payload is plain base64url JSON), or null for what is not one. */
function tokenExp(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp || null;
  } catch {
    return null;
  }
}

function msgpackCodec(MessagePack) {
  return {
    protocol: MSGPACK,
    encode: (frame) => MessagePack.encode(frame),
    decode: (data) => {
      if (typeof data === "string") return JSON.parse(data);
      return MessagePack.decode(new Uint8Array(data));
    },
  };
}

function jsonCodec() {
  return {
    protocol: JSON_PROTOCOL,
    encode: (frame) => JSON.stringify(frame),
    decode: (data) => JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data)),
  };
}
