"""Every name outside Tornado's documented API that rtserver relies on, and why.

Tornado documents its handlers and `IOStream`, not the protocol object behind a WebSocket. To
read frames in bulk, `handlers/frames.py` subclasses that object and works with its state as
Tornado's own reader does, and a connection writes whole frames straight to its stream; the
header gate's stream makes its reads' futures itself. A Tornado
release may rename any of these without a word, so the WebSocket modules reach Tornado's
internals only by the names listed here; setup.py accepts only the minor versions they were
checked on, and tests/test_tornado_internals.py fails on a release that lacks one of them or
calls one of the methods differently.
"""
from types import ModuleType
from typing import NamedTuple

import tornado.httputil
import tornado.iostream
import tornado.util
import tornado.web
import tornado.websocket

WebSocketProtocol13 = tornado.websocket.WebSocketProtocol13  # RFC 6455: what browsers speak
websocket_mask = tornado.util._websocket_mask  # Tornado's unmasking, in C where it is built


class Internal(NamedTuple):
    owner: type | ModuleType  # where Tornado defines it (on an instance, for state)
    name: str
    why: str
    params: tuple[str, ...] | None = None  # a method's parameters, as we override or call it


PROTOCOL, HANDLER = WebSocketProtocol13, tornado.websocket.WebSocketHandler  # for short below

RELIED_ON = [
    # The bulk reader (handlers/frames.py).
    Internal(PROTOCOL, "__init__", "BulkFrameProtocol is made from the handler and the "
             "parameters Tornado chose, as Tornado makes its own",
             ("self", "handler", "mask_outgoing", "params")),
    Internal(PROTOCOL, "_receive_frame_loop", "overridden: Tornado awaits it once the socket is "
             "open, and it ends by telling the handler the socket closed", ("self",)),
    Internal(PROTOCOL, "_handle_message", "each whole message goes through Tornado's own "
             "handling: close, ping, pong, UTF-8, on_message", ("self", "opcode", "data")),
    Internal(PROTOCOL, "_abort", "a frame Tornado would refuse cuts the connection as Tornado "
             "does", ("self",)),
    Internal(PROTOCOL, "close", "1002 and 1009 are sent before the cut, as Tornado sends 1009",
             ("self", "code", "reason")),
    Internal(PROTOCOL, "is_closing", "the outbox writes nothing after the close frame",
             ("self",)),
    Internal(PROTOCOL, "stream", "the reader reads it in bulk; the outbox writes whole frames "
             "to it"),
    Internal(PROTOCOL, "handler", "told when the loop ends, and asked whether a ping is "
             "admitted"),
    Internal(PROTOCOL, "params", "its max_message_size is the limit past which the reader "
             "closes with 1009; handed on to the protocol we make"),
    Internal(PROTOCOL, "client_terminated", "reading stops once the client's close (or a cut) "
             "has ended the connection"),
    Internal(PROTOCOL, "server_terminated", "after our close frame only the client's close is "
             "acted on"),
    Internal(PROTOCOL, "close_code", "handed to the handler when the loop ends"),
    Internal(PROTOCOL, "close_reason", "handed to the handler when the loop ends"),
    Internal(PROTOCOL, "_decompressor", "whether permessage-deflate was negotiated (rtserver "
             "offers none, but a frame's RSV1 bit is read as Tornado reads it)"),
    Internal(PROTOCOL, "_frame_compressed", "set per message, for _handle_message to inflate"),
    Internal(PROTOCOL, "_fragmented_message_buffer", "fragments are kept where Tornado keeps "
             "them, so its size limit counts them"),
    Internal(PROTOCOL, "_fragmented_message_opcode", "the kind of a fragmented message, kept "
             "where Tornado keeps it"),
    Internal(tornado.websocket._WebSocketParams, "max_message_size", "the reader's 1009 limit, "
             "from the application's websocket_max_message_size"),
    Internal(tornado.util, "_websocket_mask", "unmasks a client's payload (mask, data)"),
    # The socket's handler and its connection (handlers/socket.py, handlers/connection.py).
    Internal(HANDLER, "get_websocket_protocol", "overridden to put BulkFrameProtocol in the "
             "place of Tornado's protocol", ("self",)),
    Internal(HANDLER, "ws_connection", "the protocol of an open socket, None once it closed: "
             "where the outbox writes"),
    Internal(HANDLER, "on_ws_connection_close", "what the reader calls when the socket has "
             "closed, as Tornado's does", ("self", "close_code", "close_reason")),
    # The header gate's stream (rtserver/header_gate.py).
    Internal(tornado.iostream.BaseIOStream, "_start_read", "overridden to make each read's "
             "future with the loop, not with `Future()` (a getpid() each in Python 3.11); "
             "Tornado calls it at the start of every read", ("self",)),
    Internal(tornado.iostream.BaseIOStream, "_read_future", "the read under way, which "
             "_start_read sets as Tornado's does"),
    # The HTTP base handler (handlers/base.py).
    Internal(tornado.web.RequestHandler, "_finished", "a body refused with 413 is not read on"),
    Internal(tornado.web.RequestHandler, "_reason", "an HTTPError's reason phrase in the JSON "
             "error"),
    Internal(tornado.httputil.HTTPServerRequest, "_parse_body", "a streamed body's form fields, "
             "parsed as Tornado parses a buffered body's", ("self",)),
]
