"""Money as integer fen (分): parsed from and formatted to the wire's two-place decimal strings.

Floats never enter: the wire carries strings, the database DECIMAL, and everything in between int.
"""

import re

from rtserver.errors import InvalidAmount

# Longer than any amount the regex can accept (12 integer digits + "." + 2); checked first so
# a hostile megabyte string is refused without further work.
MAX_AMOUNT_CHARS = 16

# re.ASCII so that \d-like classes can never admit full-width or other Unicode digits; the
# explicit [0-9] already excludes them, the flag documents the intent.
# Exactly two places: an amount has one spelling, so "1", "1.0" and "1.000" are refused rather
# than read as 1.00 (what a client or a provider means by them is not ours to guess).
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,11})\.([0-9]{2})", re.ASCII)


def parse_amount(value) -> int:
    """Turn a wire amount such as "12.34" into fen, refusing anything but a two-place decimal string."""
    if not isinstance(value, str):
        raise InvalidAmount(f"amount must be a decimal string like \"12.34\", not {type(value).__name__}")
    if len(value) > MAX_AMOUNT_CHARS:
        raise InvalidAmount("amount is too long")
    # fullmatch, not match with "$": "$" would let a trailing newline through.
    m = _AMOUNT.fullmatch(value)
    if m is None:
        raise InvalidAmount(f"amount must be a decimal string with exactly two places, like \"12.34\": {value!r}")
    return int(m.group(1)) * 100 + int(m.group(2))


def format_fen(fen: int) -> str:
    """Render fen as the wire's two-place decimal string: 1234 -> "12.34"."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be an int, not {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{cents:02d}"
