"""Named failures, each carrying its docs/protocol.md failure code.

Use-cases raise these; the edges (the socket dispatcher, the HTTP base handler) turn them into
the wire format in one place.
"""


class RtError(Exception):
    """A refusal the client can act on; `code` is a docs/protocol.md failure code."""

    code = "internal"
    default_message = "internal error"
    http_status = 500

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.fields: dict = {}  # what the failure carries beside its code and message


class BadRequest(RtError):
    code, default_message, http_status = "bad_request", "malformed request", 400


class BadFrame(RtError):
    code, default_message, http_status = "bad_frame", "frame could not be decoded", 400


class UnknownOp(RtError):
    code, default_message, http_status = "unknown_op", "unknown op", 400


class Unauthorized(RtError):
    code, default_message, http_status = "unauthorized", "missing or invalid token", 401


class Forbidden(RtError):
    code, default_message, http_status = "forbidden", "not allowed", 403


class NotFound(RtError):
    code, default_message, http_status = "not_found", "no such thing", 404


class InvalidAmount(RtError):
    code, default_message, http_status = "invalid_amount", "invalid amount", 400


class InvalidNumber(RtError):
    code, default_message, http_status = "invalid_number", "invalid number of shares", 400


class InsufficientBalance(RtError):
    code, default_message, http_status = "insufficient_balance", "balance too low", 409


class AlreadyPaid(RtError):
    code, default_message, http_status = "already_paid", "already paid", 409


class NotPaid(RtError):
    code, default_message, http_status = "not_paid", "not paid yet", 409


class LimitExceeded(RtError):
    code, default_message, http_status = "limit_exceeded", "the daily sending limit is reached", 409


class Frozen(RtError):
    code, default_message, http_status = "frozen", "this account is frozen", 403


class RateLimited(RtError):
    code, default_message, http_status = "rate_limited", "too many requests", 429


class WrongPassword(RtError):
    code, default_message, http_status = "wrong_password", "not the packet's password", 403


class Unavailable(RtError):
    code, default_message, http_status = "unavailable", "a dependency is down; retry", 503


class PinRequired(RtError):
    code, http_status = "pin_required", 403

    def __init__(self, message: str, has_pin: bool):
        super().__init__(message)
        self.fields = {"has_pin": has_pin}  # whether to enter it, or to set one first


class BadPin(RtError):
    code, http_status = "bad_pin", 403

    def __init__(self, tries_left: int):
        super().__init__(f"wrong payment password; {tries_left} tries left")
        self.fields = {"tries_left": tries_left}


class PinLocked(RtError):
    code, http_status = "pin_locked", 403

    def __init__(self, until: int):
        super().__init__(f"payment password locked after too many wrong tries, until {until}")
        self.fields = {"until": until}


class OutcomeUnknown(Exception):
    """Not a refusal: the request may have changed something (a grab whose share may be booked)
    and what happened cannot be told yet. No answer is truer than a wrong one: its socket is
    closed, and the client's next try learns the outcome."""


class TooManyConnections(RateLimited):
    default_message = "too many connections for this user on this node"


class NodeFull(Unavailable):
    default_message = "this node has no room for more connections"
