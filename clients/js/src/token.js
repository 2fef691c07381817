// What the client reads from a token and from the server's clock, to renew the token in time.

/** A JWT's `exp` (its payload is plain base64url JSON), or null for what is not one. */
export function tokenExp(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp || null;
  } catch {
    return null;
  }
}

/**
 * How far the server's clock is ahead of ours, in seconds. server_time is whole seconds, cut
 * down, so the server's now lies somewhere in the second after it: a skew under a second is only
 * that rounding, and trusting it would expire packets up to a second late or early.
 */
export function clockSkew(serverTime) {
  const skew = serverTime + 0.5 - Date.now() / 1000;
  return Math.abs(skew) < 1 ? 0 : skew;
}
