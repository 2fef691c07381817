"""A lean PROTOCOL.md client for load generation: msgpack frames, replies matched by id."""
import asyncio
import itertools
import time

import msgpack
import tornado.websocket


class Conn:
    """One socket. `request` waits for its reply; events go to `on_event` if set."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future] = {}
        self.on_event = None
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, base_ws_url: str, token: str) -> "Conn":
        ws = await tornado.websocket.websocket_connect(f"{base_ws_url}/ws?token={token}",
                                                       subprotocols=["rp.v1.msgpack"],
                                                       ping_interval=None)
        conn = cls(ws)
        return conn

    async def _read(self):
        while True:
            data = await self.ws.read_message()
            if data is None:
                for fut in self.waiting.values():
                    if not fut.done():
                        fut.set_exception(ConnectionError("closed"))
                return
            frame = msgpack.unpackb(data)
            rid = frame.get("re")
            if rid is not None and rid in self.waiting:
                self.waiting.pop(rid).set_result(frame)
            elif self.on_event is not None:
                self.on_event(frame, time.time())

    async def request(self, op: str, **args) -> dict:
        rid = next(self.ids)
        fut = self.waiting[rid] = asyncio.get_running_loop().create_future()
        await self.ws.write_message(msgpack.packb({"op": op, "id": rid, **args}), binary=True)
        return await fut

    def close(self):
        self.ws.close()
        self.reader.cancel()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
