"""User tokens (HS256 JWTs whose `sub` is the user id) and the admin bearer token."""
import functools
import hmac
import time

import jwt

from rtserver.errors import Forbidden, Unauthorized
from rtserver.integers import MAX_ID, positive_integer

ALGORITHM = "HS256"
VERIFIED_KEPT = 4096  # tokens whose verification is remembered, the most recently used


def issue_token(secret: str, user_id: int, ttl: int = 7 * 86400) -> str:
    now = int(time.time())
    return jwt.encode({"sub": str(user_id), "iat": now, "exp": now + ttl}, secret,
                      algorithm=ALGORITHM)


def verify(secret: str, token: str | None) -> tuple[int, float]:
    """Return the user id a token names and its `exp`, or raise Unauthorized (missing, forged,
    expired)."""
    if not token:
        raise Unauthorized("token missing")
    user_id, exp = _verified(secret, token)
    if exp <= time.time():  # as PyJWT judges it, for a token verified while it was valid
        raise Unauthorized("token invalid or expired")
    return user_id, exp


def renewal(secret: str, user_id: int, token: str) -> float:
    """Return the `exp` of a new token for a user's open socket (`auth.refresh`), or raise
    Unauthorized (a token that would be refused on the upgrade) or Forbidden (another user's:
    a socket never changes hands)."""
    owner, exp = verify(secret, token)
    if owner != user_id:
        raise Forbidden("the token is another user's")
    return exp


@functools.lru_cache(maxsize=VERIFIED_KEPT)
def _verified(secret: str, token: str) -> tuple[int, float]:
    """The user id and `exp` of a token whose signature and claims hold.

    Kept for the tokens seen last: a phone reconnecting, and a client opening sockets past its
    quota, would otherwise pay a signature check (a tenth of the node's time under such a
    flood) for a token it checked a moment ago. A token that fails is checked again each time.
    """
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        raise Unauthorized("token invalid or expired") from None
    # PyJWT reads `exp` with int(), so it would take "9999999999" (and True) for a time.
    if type(claims["exp"]) not in (int, float):
        raise Unauthorized("token exp is not a number")
    user_id = positive_integer(claims["sub"], MAX_ID)
    if user_id is None:
        raise Unauthorized("token subject is not a user id")
    return user_id, claims["exp"]


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header."""
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def same_secret(given: str | None, expected: str) -> bool:
    """Compare secrets in constant time."""
    return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())
