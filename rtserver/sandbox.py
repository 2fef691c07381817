"""The --dev sandbox gateway: "pays" a sandbox order like a payment app would.

It answers the synchronous result at once and, after --sandbox-delay seconds, sends the signed
notification to the server's own webhook, so people can watch a packet go from 2 to 1. An order
is paid once: its trade is recorded in MariaDB, and paying it again answers that trade.
"""
import asyncio
import ipaddress
import json
import logging
import secrets
import time

import tornado.httpclient

from rtserver.config import Settings
from rtserver.context import Context
from rtserver.errors import NotFound
from rtserver.money import format_fen
from rtserver.payments import provider_of
from storage import payments, sandbox_trades

log = logging.getLogger("rtserver.sandbox")


async def pay_order(ctx: Context, out_trade_no: str, status: str) -> dict:
    """Pay a sandbox order once; return the synchronous result the app passes to packet.sync_paid.

    The first payment of an order makes its trade and notifies; a repeat, on any node, answers
    the same trade (and its status, whatever this one asked for) and notifies nothing.
    """
    provider = provider_of(ctx, "sandbox")
    async with ctx.db.cursor() as cur:
        order = await payments.order(cur, out_trade_no)
        if order is None or order["provider"] != "sandbox":
            raise NotFound(f"no sandbox order {out_trade_no}")
        trade = {"trade_no": "SBX" + secrets.token_hex(8), "status": status}
        if await sandbox_trades.insert(cur, out_trade_no, **trade, now=int(time.time())):
            body = json.dumps({"out_trade_no": out_trade_no, "amount": format_fen(order["amount"]),
                               **trade}).encode()
            _notify_later(ctx, body, provider.sign(body))
        else:
            trade = await sandbox_trades.of_order(cur, out_trade_no)
    return {"provider": "sandbox", "out_trade_no": out_trade_no, **trade}


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


def _notify_later(ctx: Context, body: bytes, signature: str) -> None:
    task = asyncio.ensure_future(_notify(own_notify_url(ctx.settings), body, signature,
                                         ctx.settings.sandbox_delay))
    ctx.inflight.add(task)
    task.add_done_callback(ctx.inflight.discard)


async def _notify(url: str, body: bytes, signature: str, delay: float) -> None:
    await asyncio.sleep(delay)
    try:
        await tornado.httpclient.AsyncHTTPClient().fetch(
            url, method="POST", body=body, headers={"X-Sandbox-Signature": signature,
                                                    "Content-Type": "application/json"})
    except Exception as exc:
        log.warning("sandbox notification to %s failed: %s", url, exc)
