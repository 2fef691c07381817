"""Every frame the server sends in the tests, held to docs/asyncapi.yaml.

Built once from the document: a validator for each message's payload. An event is checked
against the message whose `ev` it names; a reply against the reply messages of the op the test
sent under its id (an op the document does not know may only fail), or against every reply
message when the test sent no request with that id (a raw frame). The document leaves its
objects open — clients ignore fields they do not know — but here every object that lists its
properties is closed, so a field the server sends and the document does not name fails too.
"""
import functools
import json
import pathlib

import jsonschema
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT7

DOCUMENT = pathlib.Path(__file__).resolve().parent.parent / "docs" / "asyncapi.yaml"
BASE = "urn:rtserver:asyncapi"
FOUND: list["Mismatch"] = []  # every mismatch of the running test, failed at its teardown


class Mismatch(AssertionError):
    """A frame the server sent that no message of the document describes."""


def load(path: pathlib.Path = DOCUMENT) -> dict:
    """The document as `GET /asyncapi.json` serves it: the YAML's JSON."""
    with open(path, encoding="utf-8") as source:
        return json.loads(json.dumps(yaml.safe_load(source)))


def follow(doc: dict, node: dict) -> dict:
    """The object a chain of local `$ref`s (`#/a/b`) ends at; the node itself if it has none."""
    while "$ref" in node:
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def closed(schema):
    """A copy of `schema` in which every object listing its properties allows no others."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


class Checker:
    """The document's messages as validators: which frame may be which message."""

    def __init__(self, doc: dict):
        registry = Registry().with_resource(BASE, DRAFT7.create_resource(closed(doc)))
        names = {id(message): name for name, message in doc["components"]["messages"].items()}
        self.validators = {
            name: jsonschema.Draft7Validator(
                {"$ref": f"{BASE}#/components/messages/{name}/payload"}, registry=registry)
            for name in names.values()}
        self.events: dict[str, str] = {}  # ev → message
        self.replies: dict[str, list[str]] = {}  # op → the messages that may answer it

        def name_of(ref: dict) -> str:
            return names[id(follow(doc, ref))]

        for operation in doc["operations"].values():
            messages = [name_of(ref) for ref in operation["messages"]]
            payloads = [follow(doc, follow(doc, ref)["payload"]) for ref in operation["messages"]]
            if operation["action"] == "send":
                for name, payload in zip(messages, payloads):
                    self.events[payload["properties"]["ev"]["const"]] = name
            else:
                op = payloads[0]["properties"]["op"]["const"]
                self.replies[op] = [name_of(ref) for ref in operation["reply"]["messages"]]
        # What answers an op the document does not know: what answers every op (a failure).
        self.any_op = sorted(set.intersection(*map(set, self.replies.values())))
        self.any_reply = sorted({name for names_ in self.replies.values() for name in names_})

    def check(self, frame, ops: set | None = None) -> None:
        """Raise Mismatch unless `frame` is one of the messages it may be. `ops`: the ops the
        test sent under the frame's `re`, None when it sent no request with that id."""
        if not isinstance(frame, dict):
            raise Mismatch(f"a frame that is not a map: {frame!r:.300}")
        if "ev" in frame:
            ev = frame["ev"]
            if not isinstance(ev, str) or ev not in self.events:
                raise Mismatch(f"event {ev!r:.100} is no message of docs/asyncapi.yaml: "
                               f"{frame!r:.300}")
            candidates = [self.events[ev]]
        elif "re" in frame:
            if ops is None:
                candidates = self.any_reply
            else:
                candidates = sorted({name for op in ops
                                     for name in self.replies.get(op, self.any_op)})
        else:
            raise Mismatch(f"a frame that is neither an event nor a reply: {frame!r:.300}")
        errors = []
        for name in candidates:
            error = jsonschema.exceptions.best_match(self.validators[name].iter_errors(frame))
            if error is None:
                return
            errors.append(f"  as {name}: {error.message[:300]} at "
                          f"{'/'.join(map(str, error.absolute_path)) or 'the top'}")
        raise Mismatch(f"a frame matches no message of docs/asyncapi.yaml: {frame!r:.500}\n"
                       + "\n".join(errors))


@functools.cache
def checker() -> Checker:
    return Checker(load())


def check(frame, ops: set | None = None) -> None:
    """Check one frame the server sent; a mismatch is raised and kept for the test's teardown."""
    try:
        checker().check(frame, ops)
    except Mismatch as exc:
        FOUND.append(exc)
        raise
