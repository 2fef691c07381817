"""`GET /asyncapi.json`: the socket protocol as an AsyncAPI 3 document, docs/asyncapi.yaml as JSON.

The YAML is the one source, written by hand beside the code it describes: the test suite
validates it against the AsyncAPI 3.0.0 schema and checks every frame the server sends in the
tests against its message there (tests/asyncapi_check.py).
"""
import functools
import json
import pathlib

import yaml

from handlers.base import BaseHandler

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, where PyYAML was built with it


@functools.lru_cache(maxsize=2)
def as_json(path: pathlib.Path) -> str:
    """The YAML document as JSON text, read once: every app a process builds serves the same."""
    with open(path, encoding="utf-8") as source:
        return json.dumps(yaml.load(source, Loader=LOADER), ensure_ascii=False, indent=1)


class AsyncApiHandler(BaseHandler):
    def initialize(self, document: str):
        self.document = document

    def get(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(self.document)


def handlers_for(path: pathlib.Path) -> list:
    """The route, serving the document at `path` (the composition root knows where docs/ is)."""
    return [(r"/asyncapi.json", AsyncApiHandler, {"document": as_json(path)})]
