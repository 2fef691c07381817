// Types of @rtserver/client, for editors: the client's API, the ops' arguments and replies, and
// the events of rtserver's socket protocol (docs/protocol.md, v1 and v1.1). Money is a decimal string
// with two places ("12.34"), ids are integers, times Unix seconds.

export const MSGPACK: "rp.v1.msgpack";
export const JSON_PROTOCOL: "rp.v1.json";
export type Protocol = typeof MSGPACK | typeof JSON_PROTOCOL;

// ---- What the wire carries ----

export type Money = string;

export interface Person {
  id: number;
  name: string;
}

/** 1 personal, 2 group normal, 3 group lucky, 4 专属红包 (a group's packet for one member). */
export type PacketType = 1 | 2 | 3 | 4;
export type PacketStatus = "unpaid" | "active" | "finished" | "expired" | "voided";
/** 0 unpaid, 1 paid, 2 awaiting the provider's notification, 3 voided. */
export type PayStatus = 0 | 1 | 2 | 3;
export type PayType = "balance" | "alipay" | "wechat" | "unionpay" | "sandbox";
export type ToType = "group" | "user";

export interface PacketSummary {
  rp_id: number;
  type: PacketType;
  sender: Person;
  for_id: number;
  intro: string;
  number: number;
  total: Money;
  single?: Money;
  status: PacketStatus;
  pay_status: PayStatus;
  pay_time: number | null;
  expires_at: number;
  to_user?: Person;
  password?: string;
}

export interface Message {
  id: number;
  to_type: ToType;
  to_id: number;
  from: Person;
  kind: "text" | "packet" | "notice";
  text: string;
  packet?: PacketSummary;
  notice?: { code: "grabbed" | "finished" | "refunded"; rp_id: number; [field: string]: unknown };
  time: number;
}

export interface Limits {
  max_shares: number;
  min_share: Money;
  max_share: Money;
  max_personal: Money;
  max_payment: Money;
  intro_max: number;
}

export interface Hello {
  ev: "hello";
  user: Person;
  balance: Money;
  ledger_id: number;
  groups: { id: number; name: string; members: number }[];
  server_time: number;
  has_pin: boolean;
  limits: Limits;
}

export interface Grab {
  user: Person;
  money: Money;
  time: number;
  is_good: boolean;
}

export interface PacketDetail {
  packet: PacketSummary & {
    grabbed_count: number;
    grabbed_total: Money;
    expend_time?: number;
    return_money?: Money;
  };
  mine: { money: Money; into_account: boolean; is_good: boolean } | null;
  grabs: Grab[];
}

export interface LedgerItem {
  id: number;
  kind: "deposit" | "withdraw" | "pay" | "grab" | "refund" | string;
  direction: "in" | "out";
  amount: Money;
  balance: Money;
  time: number;
  rp_id: number | null;
  title: string;
}

/** Each op's arguments and the fields of its successful reply. */
export interface Ops {
  ping: { args: {}; result: { t: number } };
  "wallet.get": { args: {}; result: { balance: Money; ledger_id: number } };
  "wallet.set_pin": { args: { pin: string; old_pin?: string }; result: {} };
  "wallet.ledger": { args: { before?: number; limit?: number }; result: { items: LedgerItem[]; next: number | null } };
  "chat.send": { args: { to_type: ToType; to_id: number; text: string }; result: { message: Message } };
  "chat.history": {
    args: { to_type: ToType; to_id: number; before?: number; limit?: number };
    result: { messages: Message[] };
  };
  "group.members": { args: { group_id: number }; result: { members: Person[] } };
  "packet.create": {
    args: {
      type: PacketType;
      for_id: number;
      number: number;
      amount: Money;
      pay_type: PayType;
      intro?: string;
      client_key?: string;
      to_user?: number;
      password?: string;
    };
    result: {
      rp_id: number;
      total: Money;
      number: number;
      pay_status: PayStatus;
      order?: { provider: PayType; out_trade_no: string; amount: Money; [field: string]: unknown };
    };
  };
  "packet.pay": { args: { rp_id: number; pin?: string }; result: { balance: Money; packet: PacketSummary } };
  "packet.sync_paid": { args: { rp_id: number; result: Record<string, unknown> }; result: { pay_status: PayStatus } };
  "packet.grab": {
    args: { rp_id: number; password?: string };
    result: { result: "ok" | "already" | "too_slow" | "expired"; money?: Money; into_account?: boolean };
  };
  "packet.detail": { args: { rp_id: number }; result: PacketDetail };
  "packet.list": {
    args: { box: "sent" | "received"; year?: number; before?: string; limit?: number };
    result: {
      items: (PacketSummary & { money?: Money; is_good?: boolean; time?: number })[];
      count: number;
      total: Money;
      best_luck?: number;
      next: string | null;
    };
  };
  "auth.refresh": { args: { token: string }; result: { exp: number } };
}

export type OpName = keyof Ops;
export type Reply<Op extends OpName> = { re: number; ok: true } & Ops[Op]["result"];

/** The server's failure codes (docs/protocol.md), and the client's own two. */
export type ErrorCode =
  | "bad_request" | "bad_frame" | "unknown_op" | "unauthorized" | "forbidden" | "not_found"
  | "invalid_amount" | "invalid_number" | "insufficient_balance" | "already_paid" | "not_paid"
  | "rate_limited" | "unavailable" | "internal"
  | "bad_pin" | "pin_required" | "pin_locked" | "limit_exceeded" | "frozen" | "wrong_password"
  | "timeout" | "disconnected";

export interface FailureReply {
  re: number;
  ok: false;
  code: ErrorCode;
  message: string;
  /** bad_pin */
  tries_left?: number;
  /** pin_locked: when the lock ends */
  until?: number;
}

/** Events the server sends (`{"ev": NAME, ...}`). */
export interface ServerEvents {
  hello: Hello;
  message: { ev: "message"; message: Message };
  "packet.grabbed": { ev: "packet.grabbed"; rp_id: number; grabber: Person; sender: Person; money?: Money; last: boolean };
  "packet.state": {
    ev: "packet.state";
    rp_id: number;
    status: PacketStatus;
    grabbed_count: number;
    expend_time?: number;
    best?: { user: Person; money: Money };
  };
  "packet.settled": { ev: "packet.settled"; rp_id: number; money: Money };
  "packet.refunded": { ev: "packet.refunded"; rp_id: number; return_money: Money; to?: "original" | "balance" };
  "packet.voided": { ev: "packet.voided"; rp_id: number };
  wallet: { ev: "wallet"; balance: Money; ledger_id: number };
  /** The server may have lost events meant for this socket: fetch what you show again. */
  resync: { ev: "resync" };
  error: { ev: "error"; code: ErrorCode; message: string };
}

export type Status = "connecting" | "online" | "offline" | "reconnecting" | "closed";

/** Everything `on` can listen to: the server's events and the client's own. */
export interface ClientEvents extends ServerEvents {
  status: Status;
  /** A `hello` on a socket opened again after one was lost: catch up on what was missed. */
  reconnected: Hello;
  /**
   * A socket was lost; the client opens another after its backoff. 4001: the token expired;
   * 1001: the server stopped; 1006: the network; 4000: the server stopped answering (`no hello`
   * after opening, or `no pong`).
   */
  disconnected: { code: number; reason: string };
  /** `auth.refresh` gave the open socket a new token. */
  refreshed: Reply<"auth.refresh">;
  /** Renewing the token before `exp` failed (getToken or auth.refresh); the 4001 will follow. */
  refresh_failed: Error;
}

// ---- The client ----

export interface ClientOptions {
  /** The server (`https://host`) or its socket (`wss://host/ws`); on a page, the page's server. */
  url?: string | URL;
  /** The token to connect with, when it never needs renewing; else `getToken`. */
  token?: string;
  /**
   * The token to connect with; `fresh` asks for a new one: to renew it before `exp`, after a
   * 4001 close, and after a socket was refused before it opened.
   */
  getToken?: (fresh: boolean) => string | Promise<string>;
  /** "auto" (the default): msgpack when its library is there, else JSON. */
  codec?: "auto" | "msgpack" | "json";
  /** msgpack's library; by default `@msgpack/msgpack`, imported when first needed. */
  msgpack?: { encode(value: unknown): Uint8Array; decode(data: Uint8Array): unknown };
  /** The WebSocket constructor; by default the global one (Node 20: --experimental-websocket). */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
  /** ms a request waits for its reply, and a new socket for its hello (15000). */
  requestTimeout?: number;
  /** ms between the pings that find a half-open socket (30000). */
  pingInterval?: number;
  /** ms before the first reconnection (500), doubling with each failure up to `backoffMax` (15000), ±25%. */
  backoffFirst?: number;
  backoffMax?: number;
  /** Times a `rate_limited` request is sent again (3), after `rateLimitWait` ms times the attempt (1000). */
  rateLimitRetries?: number;
  rateLimitWait?: number;
  /** Requests out at once on the socket (16, the server's cap); the rest wait their turn. */
  maxInFlight?: number;
  /** Seconds before `exp` the token is renewed (60), or a fifth of its life for a short one. */
  refreshLead?: number;
}

export interface RequestOptions {
  /** ms to wait for this reply, instead of `requestTimeout`. */
  timeout?: number;
}

export class Client {
  constructor(options?: ClientOptions);
  /** The sub-protocol spoken, once `connect` has chosen it. */
  readonly protocol: Protocol | null;
  /** The socket's token: the one it connected with, or the last one refreshed. */
  readonly token: string | null;
  /** The server's clock minus this one's, in seconds (from hello's server_time). */
  readonly clockSkew: number;
  /** A socket is open and has said hello. */
  readonly connected: boolean;

  /** Connect and stay connected until `close`; resolves with the first hello. */
  connect(): Promise<Hello>;
  close(): void;
  /** Send an op; resolves with its successful reply, rejects with a RequestError. */
  request<Op extends OpName>(op: Op, args?: Ops[Op]["args"], options?: RequestOptions): Promise<Reply<Op>>;
  /** An op these types do not know (one the server added since). */
  request<Op extends string>(op: Exclude<Op, OpName>, args?: Record<string, unknown>, options?: RequestOptions): Promise<{ re: number; ok: true; [field: string]: unknown }>;
  /** Give the open socket a new token of the same user (`auth.refresh`). */
  refresh(token: string): Promise<Reply<"auth.refresh">>;
  /** Listen to an event; returns the function that stops listening. */
  on<E extends keyof ClientEvents>(name: E, listener: (value: ClientEvents[E]) => void): () => void;
  on(name: string, listener: (value: any) => void): () => void;
  off<E extends keyof ClientEvents>(name: E, listener: (value: ClientEvents[E]) => void): void;
  off(name: string, listener: (value: any) => void): void;
}

/** A request that did not succeed; `code` says why (`timeout`, `disconnected`: the client's own). */
export class RequestError extends Error {
  readonly name: "RequestError";
  readonly op: string;
  readonly code: ErrorCode;
  /** The server's failure reply (null for `timeout` and `disconnected`). */
  readonly reply: FailureReply | null;
}

/** `connect` gave up: getToken failed (its error is the `cause`) or every socket was refused. */
export class SignInError extends Error {
  readonly name: "SignInError";
}
