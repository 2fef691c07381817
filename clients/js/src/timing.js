// When the client acts on its own: the next reconnection, and the token's renewal.

/**
 * ms before reconnecting after the `failures`-th failure in a row: `first`, doubling with each
 * failure up to `most`, then spread by ±25% (`random` in [0, 1)) so that the clients a server
 * dropped all at once do not all come back at once.
 */
export function retryWait(failures, first, most, random = Math.random()) {
  return Math.min(most, first * 2 ** (failures - 1)) * (0.75 + random / 2);
}

/**
 * ms until a token ending at `exp` (Unix seconds, the server's clock) is to be renewed: `lead`
 * seconds before, or a fifth of what is left when that is shorter. `skew` is the server's clock
 * minus ours, in seconds; `now` ours, in ms.
 */
export function renewWait(exp, skew, lead, now = Date.now()) {
  const left = exp - (now / 1000 + skew);
  return 1000 * (left - Math.min(lead, left / 5));
}
