"""Paying a packet through the sandbox provider, in every order the app and the provider may
take: the app's `packet.sync_paid` and the provider's signed notification."""
import asyncio
import hashlib
import hmac
import json
import random

from bench.chaos.http import Http

# How the two messages of one payment meet. "late" may come after --payment-timeout (the packet
# is voided and the money goes back to the payer); "never" leaves it to be voided.
FLOWS = ("sync_first", "notify_first", "late", "duplicated", "reordered", "failed", "never")


def signed(secret: str, fields: dict) -> tuple[bytes, dict]:
    """The notification body and its `X-Sandbox-Signature` header (hex HMAC-SHA256)."""
    body = json.dumps(fields).encode()
    return body, {"X-Sandbox-Signature": hmac.new(secret.encode(), body,
                                                  hashlib.sha256).hexdigest(),
                  "Content-Type": "application/json"}


class Sandbox:
    def __init__(self, http: Http, secret: str, spawn):
        self.http, self.secret, self.spawn = http, secret, spawn

    async def notify(self, rng: random.Random, uid: int, order: dict, trade_no: str,
                     status: str = "SUCCESS", attempts: int = 3) -> None:
        """Send the provider's notification to some node, again while none answers."""
        fields = {"out_trade_no": order["out_trade_no"], "trade_no": trade_no,
                  "amount": order["amount"], "status": status}
        body, headers = signed(self.secret, fields)
        for _ in range(attempts):
            call = await self.http.post("notify", uid, rng.randrange(2), "/pay/notify/sandbox",
                                        body, headers, fields)
            if call.outcome != "closed" and not call.outcome.startswith("5"):
                return
            await asyncio.sleep(rng.uniform(0.5, 1.5))

    async def pay(self, rng: random.Random, uid: int, rp_id: int, order: dict, sync) -> bool:
        """Run one flow; `sync()` sends `packet.sync_paid` and says whether it was answered ok.
        Returns whether grabbing may start; a late or repeated notification is left running."""
        flow, trade_no = rng.choice(FLOWS), f"T{rp_id}"

        def later(low: float, high: float, status: str = "SUCCESS", times: int = 1) -> None:
            for _ in range(times):
                delay, own = rng.uniform(low, high), random.Random(rng.getrandbits(64))
                self.spawn(self._after(delay, own, uid, order, trade_no, status))

        if flow == "notify_first":
            await self.notify(rng, uid, order, trade_no)
            return await sync()
        if flow == "reordered":
            synced, _ = await asyncio.gather(sync(), self.notify(rng, uid, order, trade_no))
            return synced
        synced = await sync()
        if flow == "sync_first":
            later(0.0, 2.0)
        elif flow == "late":
            later(5.0, 14.0)
        elif flow == "duplicated":
            later(0.0, 3.0, times=3)
        elif flow == "failed":
            later(0.0, 3.0, status="FAILED")
        return synced

    async def _after(self, delay, rng, uid, order, trade_no, status) -> None:
        await asyncio.sleep(delay)
        await self.notify(rng, uid, order, trade_no, status)
