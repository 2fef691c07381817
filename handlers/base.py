"""The one base handler: the context, bounded bodies, admin auth, and errors in the wire format."""
import functools
import json
import logging

import tornado.httputil
import tornado.web

from rtserver import auth
from rtserver.context import Context
from rtserver.errors import BadRequest, RtError, Unauthorized, Unavailable
from storage.errors import is_dependency_down

log = logging.getLogger("rtserver.http")
gen_log = logging.getLogger("tornado.general")
app_log = logging.getLogger("tornado.application")

MAX_BODY = 64 * 1024  # docs/protocol.md: bigger HTTP bodies are refused with 413
UNCAPPED = 1 << 62  # Tornado's body limit, lifted where BaseHandler enforces MAX_BODY itself
BODY_METHODS = ("post", "put", "patch", "delete")


class BodyTooLarge(BadRequest):
    http_status, default_message = 413, f"the body is larger than {MAX_BODY // 1024} KiB"


class PathOnlyLogs:
    """Tornado's logging of a failed request, naming the request by its path: a query may carry
    a token, and Tornado's own version prints the whole URI."""

    def log_exception(self, typ, value, tb):
        summary = f"{self.request.method} {self.request.path}"
        if isinstance(value, tornado.web.HTTPError):
            if value.log_message:
                gen_log.warning("%d %s: %s", value.status_code, summary, value.get_message())
        else:
            app_log.error("Uncaught exception %s", summary, exc_info=(typ, value, tb))


class StaticFiles(PathOnlyLogs, tornado.web.StaticFileHandler):
    """The browser client's files."""


@tornado.web.stream_request_body
class BaseHandler(PathOnlyLogs, tornado.web.RequestHandler):
    """Every HTTP handler's base: subclasses get the limits and the error format for free.

    The body is streamed so that one over MAX_BODY is refused with 413 as soon as its size is
    known, before it is read: from `Content-Length` before any of it arrives, or once the chunks
    received pass the limit. A handler's method still finds the whole body in
    `self.request.body` (and form fields in `get_body_argument`), as without streaming.
    """

    _chunks: list | None = None
    _received = 0

    def __init_subclass__(cls, **kwargs):
        # Tornado calls a streaming handler's method once the body has arrived, but leaves
        # assembling it to the handler: every subclass's method gets it assembled first.
        super().__init_subclass__(**kwargs)
        for name in BODY_METHODS:
            if name in vars(cls):
                setattr(cls, name, _after_whole_body(vars(cls)[name]))

    @property
    def ctx(self) -> Context:
        return self.application.settings["ctx"]

    def set_default_headers(self):
        # Tornado's default is text/html; nothing here answers HTML, and a plain `success` to a
        # payment provider is plain text.
        self.set_header("Content-Type", "text/plain; charset=utf-8")

    def prepare(self):
        # `rtserver serve` caps every body at MAX_BODY for routes that are not ours (static
        # files, the socket), answering 400 and closing. Here we enforce the same limit with a
        # 413, so the cap is lifted: Tornado then drops the unread rest and closes quietly.
        self.request.connection.set_max_body_size(UNCAPPED)
        if _declared_length(self.request) > MAX_BODY:
            raise BodyTooLarge()

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return  # refused already; Tornado drops the rest and closes the connection
        self._received += len(chunk)
        if self._received > MAX_BODY:  # a chunked body: its size was not told in advance
            # Answered here: what data_received raises, Tornado only logs, closing the socket.
            return self.send_error(413, exc_info=(BodyTooLarge, BodyTooLarge(), None))
        if self._chunks is None:
            self._chunks = []
        self._chunks.append(chunk)

    def _take_whole_body(self) -> None:
        """Put the streamed body where Tornado puts a buffered one, and parse its form fields."""
        if self._chunks is None:
            return
        self.request.body, self._chunks = b"".join(self._chunks), None
        try:
            self.request._parse_body()  # what Tornado itself does with a buffered body
        except tornado.httputil.HTTPInputError as exc:
            raise BadRequest(f"invalid body: {exc}") from None

    def json_body(self) -> dict:
        """The request body as a JSON object, or BadRequest with what is wrong."""
        try:
            body = json.loads(self.request.body or b"null", parse_constant=_not_json)
        except (ValueError, RecursionError) as exc:
            raise BadRequest(f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        if not is_unicode(body):
            raise BadRequest("body is not Unicode: a string holds a lone surrogate")
        return body

    def write_json(self, obj, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(obj, ensure_ascii=False))

    def log_exception(self, typ, value, tb):
        if isinstance(value, RtError):
            return  # an answered refusal, not a bug: no traceback
        if is_dependency_down(value):
            return self.ctx.outages.failed(value, f"{self.request.method} {self.request.path}",
                                           app_log)
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        if exc is not None and is_dependency_down(exc):
            exc = Unavailable()
        if isinstance(exc, BodyTooLarge):
            self.set_header("Connection", "close")  # the rest of the body is never read
        if status_code == 405:
            self.set_header("Allow", ", ".join(self._allowed_methods()))
        if isinstance(exc, RtError):
            self.write_json({"code": exc.code, "message": exc.message}, exc.http_status)
        elif isinstance(exc, tornado.web.HTTPError):
            self.write_json({"code": "bad_request" if status_code < 500 else "internal",
                             "message": exc.log_message or self._reason}, status_code)
        else:
            self.write_json({"code": "internal", "message": "internal error"}, 500)

    def _allowed_methods(self) -> list[str]:
        """The methods this handler answers: those it defines itself."""
        base = tornado.web.RequestHandler
        return [m for m in self.SUPPORTED_METHODS
                if getattr(type(self), m.lower()) is not getattr(base, m.lower())]


def is_unicode(value) -> bool:
    """Whether every string in a value decoded from JSON is real Unicode text (False too when
    the value is nested too deep to tell).

    JSON's \\ud800-\\udfff escapes decode to lone surrogates, which no reply, no msgpack and no
    database column can carry.
    """
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


def _declared_length(request) -> int:
    """The body size a request announces; 0 when it announces none (or nonsense Tornado refuses)."""
    try:
        return int(request.headers.get("Content-Length", "0"))
    except ValueError:
        return 0


def _after_whole_body(method):
    """Wrap a handler method so that it runs with the whole streamed body in place."""
    @functools.wraps(method)
    def with_body(self, *args, **kwargs):
        self._take_whole_body()
        return method(self, *args, **kwargs)
    return with_body


class AdminHandler(BaseHandler):
    """Handlers of the chat app's back end, authorised by the admin bearer token."""

    def prepare(self):
        super().prepare()
        given = auth.bearer(self.request.headers.get("Authorization"))
        if not auth.same_secret(given, self.ctx.settings.admin_token):
            raise Unauthorized("admin token missing or wrong")
