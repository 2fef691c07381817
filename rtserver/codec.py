"""The two wire encodings: msgpack in binary frames, JSON in text frames. Every frame is one map."""
import json

import msgpack

from rtserver.errors import BadFrame

MSGPACK = "rp.v1.msgpack"
JSON = "rp.v1.json"
SUBPROTOCOLS = (MSGPACK, JSON)
MAX_REPLY = 256 * 1024  # docs/protocol.md: no reply is larger, in bytes as sent
# One packer for every frame: making one per frame (`msgpack.packb`) is most of what packing a
# small frame costs. It starts empty again after each frame, also after one that failed; it is
# shared, so frames are encoded on the event loop's thread alone (never in an executor).
_PACKER = msgpack.Packer(use_bin_type=True)


def size_at_most(frame: dict) -> int:
    """An upper bound of a frame's size in either encoding: its JSON's UTF-8 bytes (msgpack is
    never larger: shorter numbers, no quotes, no escapes)."""
    return len(json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode())


def encode(subprotocol: str, frame: dict) -> bytes | str:
    if subprotocol == JSON:
        return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))
    return _PACKER.pack(frame)


def decode(data: bytes | str) -> dict:
    """Decode one frame by its kind (binary: msgpack, text: JSON) into a map, or raise BadFrame."""
    try:
        if isinstance(data, bytes):
            frame = msgpack.unpackb(data, raw=False, strict_map_key=False)
        else:
            frame = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        raise BadFrame(f"cannot decode frame: {type(exc).__name__}") from None
    if not isinstance(frame, dict):
        raise BadFrame("a frame must be a map")
    return frame


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")
