"""Argument schemas for socket ops: each parser turns a wire value into a checked Python value."""
from rtserver.errors import BadRequest
from rtserver.integers import MAX_ID
from rtserver.money import parse_amount
from rtserver.pin_hash import parse_pin

REQUIRED = object()


def identifier(value) -> int:
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise BadRequest("ids are positive integers")
    return value


def count(lo: int, hi: int):
    def parse(value) -> int:
        if type(value) is not int or not lo <= value <= hi:
            raise BadRequest(f"expected an integer from {lo} to {hi}")
        return value
    return parse


def text(max_len: int, min_len: int = 0):
    def parse(value) -> str:
        if not isinstance(value, str) or not min_len <= len(value) <= max_len:
            raise BadRequest(f"expected text of {min_len} to {max_len} characters")
        return value
    return parse


def choice(*allowed):
    def parse(value):
        if not isinstance(value, str) or value not in allowed:
            raise BadRequest(f"expected one of {', '.join(allowed)}")
        return value
    return parse


def mapping(value) -> dict:
    if not isinstance(value, dict):
        raise BadRequest("expected a map")
    return value


def anything(value):
    return value


amount = parse_amount
pin = parse_pin  # six ASCII digits


def parse_args(schema: dict, frame: dict) -> dict:
    """Check a frame's arguments against a schema of name → (parser, default or REQUIRED)."""
    args = {}
    for name, (parse, default) in schema.items():
        value = frame.get(name)
        if value is None:
            if default is REQUIRED:
                raise BadRequest(f"{name} is required")
            args[name] = default
            continue
        try:
            args[name] = parse(value)
        except BadRequest as exc:
            raise BadRequest(f"{name}: {exc.message}") from None
    return args
