// @rtserver/client: a client of rtserver's socket protocol (docs/protocol.md) for pages and Node.

export { Client } from "./client.js";
export { JSON_PROTOCOL, MSGPACK } from "./codec.js";
export { RequestError, SignInError } from "./errors.js";
