"""Split a packet's total into shares, in integer fen."""

import secrets


def split_equal(single: int, number: int) -> list[int]:
    """Return `number` shares of `single` fen each (a group-normal packet)."""
    if number < 1:
        raise ValueError(f"number must be at least 1, got {number}")
    if single < 0:
        raise ValueError(f"share must not be negative, got {single}")
    return [single] * number


def split_lucky(total: int, number: int, min_share: int = 1, max_share: int = 20000,
                rng=None) -> list[int]:
    """Split `total` fen into `number` random shares, each within [min_share, max_share].

    Bounded double-mean (二倍均值): with `rem` fen left for `k` shares, a share is drawn uniformly
    from [lo, hi], where the bounds keep what is left splittable within the limits and the
    double-mean cap 2*rem/k keeps the expected share near the mean, so the first grabbers have
    no advantage. The shares are then shuffled, so grab order and draw order are unrelated.
    `rng` needs `.randint` and `.shuffle`; it defaults to a CSPRNG.
    """
    if number < 1:
        raise ValueError(f"number must be at least 1, got {number}")
    if min_share < 0 or min_share > max_share:
        raise ValueError(f"bad share bounds [{min_share}, {max_share}]")
    if not number * min_share <= total <= number * max_share:
        raise ValueError(f"cannot split {total} into {number} shares within [{min_share}, {max_share}]")
    if rng is None:
        rng = secrets.SystemRandom()

    shares = []
    rem = total
    # Invariant: k*min_share <= rem <= k*max_share, so [lo, hi] below is never empty and the
    # remainder after any draw in it is again splittable into k-1 shares.
    for k in range(number, 1, -1):
        lo = max(min_share, rem - max_share * (k - 1))
        hi = min(max_share, rem - min_share * (k - 1))
        # The cap may fall below lo when the remainder is near k*max_share; feasibility wins.
        hi = min(hi, max(lo, 2 * rem // k))
        share = rng.randint(lo, hi)
        shares.append(share)
        rem -= share
    shares.append(rem)
    rng.shuffle(shares)
    return shares
