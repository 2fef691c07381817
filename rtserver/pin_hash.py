"""The payment password's rules: six ASCII digits, kept as a slow salted hash (scrypt, from the
standard library) with its parameters stored beside it, checked in constant time on threads of
their own, never on the event loop."""
import asyncio
import base64
import collections
import concurrent.futures
import hashlib
import hmac
import os
import re
import secrets
from typing import NamedTuple

from rtserver.errors import BadRequest

# Only 0-9: Python's \d and str.isdigit() would take full-width digits (１２３) and others.
PIN = re.compile(r"[0-9]{6}")


class Params(NamedTuple):
    """scrypt's cost: N = 2**log_n, block size r, parallelism p."""
    log_n: int
    r: int
    p: int


# Django's scrypt defaults: 16 MiB and some 70 ms a hash here. New hashes take these; a stored
# hash is checked with the parameters written beside it, so they can be raised at any time.
CURRENT = Params(log_n=14, r=8, p=1)
SALT_BYTES, HASH_BYTES = 16, 32
# Hashing is all CPU: half the cores at most, so that the event loop keeps one however many
# tries come, and at most 4 hashes' memory (16 MiB each) at once.
THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))


def parse_pin(value) -> str:
    """A PIN from the wire: a string of six ASCII digits, or BadRequest (never saying it)."""
    if type(value) is not str or not PIN.fullmatch(value):
        raise BadRequest("a payment password is a string of six digits 0-9")
    return value


def hash_pin(pin: str, params: Params = CURRENT) -> str:
    """The PIN as stored: `$scrypt$ln=14,r=8,p=1$SALT$HASH` (the PHC string format)."""
    salt = secrets.token_bytes(SALT_BYTES)
    return (f"$scrypt$ln={params.log_n},r={params.r},p={params.p}"
            f"${_b64(salt)}${_b64(_scrypt(pin, salt, params))}")


def pin_matches(pin: str, stored: str) -> bool:
    """Whether `pin` is the one `stored` was made from, compared in constant time."""
    _, name, settings, salt, digest = stored.split("$")
    if name != "scrypt":
        raise ValueError(f"not a hash this server makes: {name}")
    values = dict(item.split("=") for item in settings.split(","))
    params = Params(int(values["ln"]), int(values["r"]), int(values["p"]))
    expected = _unb64(digest)
    return hmac.compare_digest(_scrypt(pin, _unb64(salt), params, len(expected)), expected)


def _scrypt(pin: str, salt: bytes, params: Params, size: int = HASH_BYTES) -> bytes:
    n = 1 << params.log_n
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=params.r, p=params.p,
                          maxmem=256 * params.r * (n + params.p), dklen=size)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


class PinHasher:
    """Runs the slow hashes on its own threads, so that no PIN check stalls the event loop, and
    one user's at a time on a node: a user who floods tries waits for their own turns and takes
    no more than one thread from everyone else."""

    def __init__(self, threads: int = THREADS):
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="pin-hash")
        self._turns: dict[int, asyncio.Lock] = {}
        self._waiting: collections.Counter[int] = collections.Counter()

    async def run(self, user_id: int, work, *args):
        """`work(*args)` on a hashing thread, in the user's turn."""
        turn = self._turns.setdefault(user_id, asyncio.Lock())
        self._waiting[user_id] += 1
        try:
            async with turn:
                return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        finally:
            # A turn is kept while its user has work here, then forgotten: a node sees millions.
            self._waiting[user_id] -= 1
            if not self._waiting[user_id]:
                del self._waiting[user_id], self._turns[user_id]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
