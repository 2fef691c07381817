// What a request or a sign-in can fail with, as values an app can switch on.

/**
 * A request that did not succeed. `code` is docs/protocol.md's failure code from the server's reply
 * (`not_found`, `insufficient_balance`, `bad_pin`, …, its other fields in `reply`), or one of the
 * client's own: `timeout` (no reply in time: the request may or may not have been done) and
 * `disconnected` (not connected, or the socket closed before the reply came).
 */
export class RequestError extends Error {
  constructor(op, code, message, reply = null) {
    super(message || code);
    this.name = "RequestError";
    this.op = op;
    this.code = code;
    this.reply = reply;
  }
}

/**
 * The client gave up signing in: `getToken` failed (its error is the `cause`), or the server
 * refused every socket before one ever opened (an unknown user, a token it will not take).
 */
export class SignInError extends Error {
  constructor(message, cause) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "SignInError";
  }
}
