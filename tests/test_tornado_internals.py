"""Tornado still has every internal name rtserver relies on, as rtserver uses it.

These fail on a Tornado release that renamed, removed or changed one of them: before widening
setup.py's pin, read that release's `tornado/websocket.py` against handlers/frames.py.
"""
import ast
import inspect
import pathlib
import socket

import pytest
import tornado.httputil
import tornado.iostream
import tornado.util
import tornado.web
import tornado.websocket

from handlers.tornado_internals import RELIED_ON, WebSocketProtocol13, websocket_mask

ROOT = pathlib.Path(__file__).parent.parent
# The modules that work inside Tornado's WebSocket implementation and its streams.
INSIDE_TORNADO = ["handlers/frames.py", "handlers/socket.py", "handlers/connection.py",
                  "rtserver/header_gate.py"]


class Detached:
    """Just enough of an HTTP connection for a handler to be made outside a server."""

    def set_close_callback(self, callback) -> None:
        pass


def made_by_tornado() -> dict:
    """An object of each kind that holds relied-on state, made as Tornado makes it: much of
    that state exists only on instances."""
    params = tornado.websocket._WebSocketParams()
    start = tornado.httputil.RequestStartLine("GET", "/ws", "HTTP/1.1")
    request = tornado.httputil.HTTPServerRequest(
        connection=Detached(), start_line=start, headers=tornado.httputil.HTTPHeaders(Host="x"))
    handler = tornado.websocket.WebSocketHandler(tornado.web.Application(), request)
    stream = tornado.iostream.IOStream(socket.socket())
    stream.close()
    return {WebSocketProtocol13: WebSocketProtocol13(handler, False, params),
            tornado.iostream.BaseIOStream: stream,
            tornado.websocket._WebSocketParams: params,
            tornado.websocket.WebSocketHandler: handler, tornado.web.RequestHandler: handler,
            tornado.httputil.HTTPServerRequest: request, tornado.util: tornado.util}


@pytest.mark.parametrize("internal", RELIED_ON, ids=lambda i: f"{i.owner.__name__}.{i.name}")
def test_tornado_still_has_it(internal):
    assert hasattr(made_by_tornado()[internal.owner], internal.name), internal.why
    if internal.params is not None:
        method = getattr(internal.owner, internal.name)
        assert tuple(inspect.signature(method).parameters) == internal.params, internal.why


def test_the_frame_loop_is_still_a_coroutine_tornado_awaits():
    assert inspect.iscoroutinefunction(WebSocketProtocol13._receive_frame_loop)


def test_the_mask_still_unmasks_a_payload():
    mask, payload = b"\x01\x02\x03\x04", b"red packet"
    masked = websocket_mask(mask, payload)
    assert masked != payload and websocket_mask(mask, masked) == payload


@pytest.mark.parametrize("module", INSIDE_TORNADO)
def test_the_modules_inside_tornado_use_no_private_name_of_tornado_left_unlisted(module):
    tree = ast.parse((ROOT / module).read_text())
    ours = {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith("tornado") for alias in node.names}
    private = {name for name in used | imported
               if name.startswith("_") and not name.startswith("__")}
    assert private - ours <= {internal.name for internal in RELIED_ON}
    assert not {name for name in imported if name.startswith("_")}, \
        "import Tornado's private names from handlers.tornado_internals"
