"""docs/asyncapi.yaml: a valid AsyncAPI 3.0.0 document, served as `GET /asyncapi.json`, naming
every op, event and failure code of the code. (Every frame the other tests receive is checked
against it too: tests/asyncapi_check.py.)"""
import copy
import json
import pathlib
import re

import jsonschema
import pytest

from handlers.ops import OPS
from rtserver import errors
from rtserver.providers import trades  # noqa: F401 — its RtError subclasses count too
from tests import asyncapi_check

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The AsyncAPI Initiative's own schema of the 3.0.0 specification, from npm's @asyncapi/specs
# (package.json's devDependencies, installed by `make install`).
SPEC = ROOT / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0.json"


@pytest.fixture(scope="module")
def official():
    assert SPEC.exists(), f"{SPEC.relative_to(ROOT)} is missing: run `make install` (npm)"
    spec = json.loads(SPEC.read_text())
    assert spec["properties"]["asyncapi"]["const"] == "3.0.0"
    return jsonschema.Draft7Validator(spec)


@pytest.fixture(scope="module")
def doc():
    return asyncapi_check.load()


def test_the_document_is_valid_asyncapi_3(official, doc):
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
                for e in official.iter_errors(doc)]
    assert problems == []


def test_the_official_schema_refuses_a_broken_document(official, doc):
    """The check above reaches inside: a payload that is no schema, an operation that is
    neither sent nor received, a server without its host."""
    for path, value in [(("components", "messages", "hello", "payload", "type"), "objekt"),
                        (("operations", "ping", "action"), "ask"),
                        (("servers", "json", "host"), None)]:
        broken = copy.deepcopy(doc)
        *parents, last = path
        node = broken
        for name in parents:
            node = node[name]
        if value is None:
            del node[last]
        else:
            node[last] = value
        assert list(official.iter_errors(broken)), path


def test_every_local_reference_resolves(doc):
    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(doc):
        assert ref["$ref"].startswith("#/"), ref
        asyncapi_check.follow(doc, ref)  # a KeyError names the one that does not


def test_every_op_is_documented_with_its_reply():
    checker = asyncapi_check.checker()
    assert set(checker.replies) == set(OPS)
    assert all("failure" in replies and len(replies) == 2 for replies in checker.replies.values())


def rt_errors(cls=errors.RtError):
    for sub in cls.__subclasses__():
        yield sub
        yield from rt_errors(sub)


def test_every_failure_code_is_documented_and_no_other(doc):
    codes = {cls.code for cls in rt_errors()} | {errors.RtError.code}
    assert set(doc["components"]["schemas"]["FailureCode"]["enum"]) == codes


def test_every_event_the_code_sends_is_documented():
    sent = set()
    for source in [*ROOT.glob("rtserver/**/*.py"), *ROOT.glob("handlers/*.py")]:
        sent.update(re.findall(r'"ev": "([a-z.]+)"', source.read_text()))
    assert sent == set(asyncapi_check.checker().events)


@pytest.mark.gen_test
async def test_asyncapi_json_is_the_document(http_client, base_url, doc):
    response = await http_client.fetch(base_url + "/asyncapi.json")
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.body) == doc


@pytest.mark.parametrize("frame, ops", [
    ({"ev": "renamed", "name": "x"}, None),  # no such event
    ({"ev": "wallet", "balance": "1.00", "ledger_id": 3, "currency": "CNY"}, None),  # a field
    ({"ev": "wallet", "balance": "1.0", "ledger_id": 3}, None),  # money with one place
    ({"ev": "wallet", "balance": 1.0, "ledger_id": 3}, None),  # money as a number
    ({"ev": "packet.refunded", "rp_id": 4, "return_money": "1.00"}, None),  # without `to`
    ({"re": 1, "ok": True, "t": 5}, {"packet.grab"}),  # the wrong op's reply
    ({"re": 1, "ok": True, "t": 5}, {"no.such.op"}),  # an unknown op only fails
    ({"re": 1, "ok": True, "result": "ok"}, {"packet.grab"}),  # won, but no money
    ({"re": 1, "ok": False, "code": "oops", "message": ""}, {"ping"}),  # no such code
    ({"re": 1, "ok": False, "code": "bad_pin", "message": ""}, {"packet.pay"}),  # no tries_left
    ({"re": "1", "ok": True, "x": 1}, None),  # no reply of any op has `x`
    ({"t": 5}, None),  # neither event nor reply
])
def test_the_frame_checker_refuses_what_the_document_does_not_say(frame, ops):
    with pytest.raises(asyncapi_check.Mismatch):
        asyncapi_check.checker().check(frame, ops)


@pytest.mark.parametrize("frame, ops", [
    ({"ev": "resync"}, None),
    ({"re": None, "ok": False, "code": "rate_limited", "message": "too many"}, None),
    ({"re": 7, "ok": False, "code": "unknown_op", "message": "unknown op"}, {"no.such.op"}),
    ({"re": 7, "ok": False, "code": "pin_locked", "message": "", "until": 99}, {"packet.pay"}),
    ({"re": "a", "ok": True, "result": "already", "money": "0.01", "into_account": False},
     {"packet.grab"}),
])
def test_the_frame_checker_takes_what_the_document_says(frame, ops):
    asyncapi_check.checker().check(frame, ops)
