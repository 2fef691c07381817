"""Integers written as text (a token's sub, a path id, UnionPay's fen): one spelling each."""
import re

MAX_ID = 2**63 - 1  # the largest id: a signed 64-bit integer's

# ASCII digits with no sign, space or leading zero: "01", "+1", " 1" and "１" spell 1 too, and
# whatever reads them as 1 lets one spelling of an id or an amount pass for another.
_CANONICAL = re.compile(r"[1-9][0-9]*", re.ASCII)


def positive_integer(text, most: int) -> int | None:
    """Read the integer from 1 to `most` that `text` spells canonically; None for anything else."""
    # The length check first, so that a hostile megabyte of digits is refused without parsing it.
    if not isinstance(text, str) or len(text) > len(str(most)) or not _CANONICAL.fullmatch(text):
        return None
    value = int(text)
    return value if value <= most else None
