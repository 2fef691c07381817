"""What every provider's verification is made of: keys, RSA-SHA256, sorted pairs, forms, JSON.

Nothing here knows a provider; each provider's module says which of these it uses, and how.
"""
import base64
import binascii
import hmac
import json
import pathlib
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from rtserver.errors import BadRequest
from rtserver.providers.trades import BadSignature


def same(given: str, expected: str) -> bool:
    """Compare in constant time; any text, not only ASCII, is a fair (and failing) guess."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def public_key(path: str):
    return serialization.load_pem_public_key(pathlib.Path(path).read_bytes())


def private_key(path: str):
    return serialization.load_pem_private_key(pathlib.Path(path).read_bytes(), password=None)


def rsa_verify(key, signature_b64: str, message: bytes) -> None:
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), message, padding.PKCS1v15(),
                   hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        raise BadSignature() from None


def rsa_sign(key, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def sorted_pairs(fields: dict[str, str], leave_out: tuple[str, ...]) -> str:
    """`k=v&k=v` of the fields sorted by name: what Alipay and UnionPay sign."""
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in leave_out)


def form(body: bytes) -> dict[str, str]:
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                       strict_parsing=bool(body), max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not a form") from None
    return dict(pairs)


def json_object(body: bytes) -> dict:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("body is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object")
    return value


def text(fields: dict, name: str, max_len: int = 64) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise BadRequest(f"{name} missing or malformed")
    return value
