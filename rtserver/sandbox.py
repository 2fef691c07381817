"""The --dev sandbox gateway: "pays" a sandbox order like a payment app would.

It answers the synchronous result at once and, after --sandbox-delay seconds, sends the signed
notification to the server's own webhook, so people can watch a packet go from 2 to 1.
"""
import asyncio
import ipaddress
import json
import logging
import secrets

import tornado.httpclient

from rtserver.config import Settings
from rtserver.context import Context
from rtserver.errors import NotFound
from rtserver.money import format_fen
from rtserver.payments import provider_of
from storage import payments

log = logging.getLogger("rtserver.sandbox")


async def pay_order(ctx: Context, out_trade_no: str, status: str) -> dict:
    """Pay a sandbox order; return the synchronous result the app passes to packet.sync_paid."""
    sandbox = provider_of(ctx, "sandbox")
    async with ctx.db.cursor() as cur:
        order = await payments.order(cur, out_trade_no)
    if order is None or order["provider"] != "sandbox":
        raise NotFound(f"no sandbox order {out_trade_no}")
    trade_no = "SBX" + secrets.token_hex(8)
    body = json.dumps({"out_trade_no": out_trade_no, "trade_no": trade_no,
                       "amount": format_fen(order["amount"]), "status": status}).encode()
    task = asyncio.ensure_future(_notify_later(own_notify_url(ctx.settings), body,
                                               sandbox.sign(body), ctx.settings.sandbox_delay))
    ctx.inflight.add(task)
    task.add_done_callback(ctx.inflight.discard)
    return {"provider": "sandbox", "out_trade_no": out_trade_no, "trade_no": trade_no,
            "status": status}


def own_notify_url(settings: Settings) -> str:
    """Build the sandbox webhook's URL on this server's own listening address, never a request's.

    Listening on every address (0.0.0.0, ::, or none given) is reached through loopback.
    """
    try:
        ip = ipaddress.ip_address(settings.address or "0.0.0.0")
    except ValueError:  # a host name: the server resolved it to listen, so it resolves here too
        host = settings.address
    else:
        if ip.is_unspecified:
            ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
        host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"http://{host}:{settings.port}/pay/notify/sandbox"


async def _notify_later(url: str, body: bytes, signature: str, delay: float) -> None:
    await asyncio.sleep(delay)
    try:
        await tornado.httpclient.AsyncHTTPClient().fetch(
            url, method="POST", body=body, headers={"X-Sandbox-Signature": signature,
                                                    "Content-Type": "application/json"})
    except Exception as exc:
        log.warning("sandbox notification to %s failed: %s", url, exc)
