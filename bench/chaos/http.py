"""The workload's HTTP calls (admin deposits, provider notifications), recorded like socket calls."""
import asyncio
import json

import tornado.httpclient

from bench.chaos.history import Call, History
from bench.chaos.session import REPLY_WAIT

LOST_AFTER = REPLY_WAIT + 5


class Http:
    def __init__(self, history: History, node_urls: list[str]):
        self.history, self.node_urls = history, node_urls
        # Enough parallel requests that a stopped node does not queue everyone else's.
        self.client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=64)

    async def post(self, op: str, user: int, node: int, path: str, body: bytes,
                   headers: dict, args: dict) -> Call:
        """POST `body` to a node; the outcome is the HTTP status, or "closed" if none came."""
        call = self.history.begin(op, user, node, -1, args)
        try:
            # Tornado's client has been seen waiting forever on a request whose node was killed
            # under it, past its own request_timeout: "lost" is that, not the server's silence.
            response = await asyncio.wait_for(self.client.fetch(
                self.node_urls[node] + path, method="POST", body=body, headers=headers,
                raise_error=False, connect_timeout=3, request_timeout=REPLY_WAIT), LOST_AFTER)
        except asyncio.TimeoutError:
            return self.history.end(call, "lost")
        except OSError:
            return self.history.end(call, "closed")
        if response.code == 599:  # Tornado's "no HTTP answer": refused, reset or timed out
            return self.history.end(call, "closed")
        try:
            reply = json.loads(response.body) if response.body else {}
        except ValueError:
            reply = {"body": response.body[:200].decode(errors="replace")}
        return self.history.end(call, str(response.code), reply)

    def close(self) -> None:
        self.client.close()
