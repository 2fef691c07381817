"""Payment webhooks (one per provider) and the --dev sandbox gateway."""
import logging

from handlers.base import BaseHandler
from rtserver import payments, sandbox
from rtserver.errors import BadRequest, NotFound, RtError

log = logging.getLogger("rtserver.pay")


class NotifyHandler(BaseHandler):
    """A provider's asynchronous notification, answered the way that provider expects."""

    async def post(self, name):
        provider = self.ctx.providers.get(name)
        if provider is None:
            raise NotFound(f"{name} is not configured on this server")
        try:
            await payments.notified(self.ctx, name, self.request.headers, self.request.body)
            ok = True
        except RtError as exc:
            log.warning("%s notification refused: %s", name, exc.message)
            ok = False
        status, text = provider.answer(ok)
        self.set_status(status)
        if text:
            self.set_header("Content-Type", f"{provider.answer_type}; charset=utf-8")
        self.finish(text or None)


class SandboxPayHandler(BaseHandler):
    """`POST /sandbox/pay {"out_trade_no", "status"}`: the sandbox payment app, under --dev."""

    async def post(self):
        if not self.ctx.settings.dev:
            raise NotFound("only under --dev")
        body = self.json_body()
        out_trade_no, status = body.get("out_trade_no"), body.get("status", "SUCCESS")
        if not isinstance(out_trade_no, str) or status not in ("SUCCESS", "FAILED"):
            raise BadRequest("out_trade_no (text) and status SUCCESS or FAILED are required")
        self.write_json(await sandbox.pay_order(self.ctx, out_trade_no, status))


default_handlers = [
    (r"/pay/notify/(alipay|wechat|unionpay|sandbox)", NotifyHandler),
    (r"/sandbox/pay", SandboxPayHandler),
]
