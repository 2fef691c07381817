"""The soak's users and groups, and the sockets that keep them connected to both nodes.

Every user has a socket to one node; some have a second to the other node at the same time.
Each socket lives a while, then closes and reconnects, and reconnects too when its node dies.
"""
import asyncio
import json
import random

from bench.chaos.history import History
from bench.chaos.http import Http
from bench.chaos.session import Session
from rtserver.auth import issue_token

USERS = 100
GROUPS = 4
SECOND_GROUP = 0.3  # share of users in a second group
BOTH_NODES = 0.35  # share of users connected to both nodes at once
START_BALANCE = "100.00"
LIFETIME = (20.0, 90.0)  # seconds a socket stays before its user reconnects
BACKOFF = (0.3, 1.5)  # seconds before trying again when a node refuses


class People:
    def __init__(self, seed: int, history: History, http: Http, ws_urls: list[str],
                 token_secret: str, admin_token: str):
        self.seed, self.history, self.http = seed, history, http
        self.ws_urls, self.token_secret = ws_urls, token_secret
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        rng = random.Random(f"{seed}:people")
        self.users = list(range(1, USERS + 1))
        self.groups: dict[int, list[int]] = {g: [] for g in range(1, GROUPS + 1)}
        for uid in self.users:
            first = uid % GROUPS + 1
            self.groups[first].append(uid)
            if rng.random() < SECOND_GROUP:
                self.groups[rng.choice([g for g in self.groups if g != first])].append(uid)
        self.slots = [(uid, uid % 2) for uid in self.users]
        self.slots += [(uid, 1 - uid % 2) for uid in self.users if rng.random() < BOTH_NODES]
        self.live: dict[int, list[Session]] = {uid: [] for uid in self.users}
        self.cycling = True  # False: sockets stay put (the end of the run), still reopened if cut
        self.stopped = asyncio.Event()

    def groups_of(self, uid: int) -> list[int]:
        return [g for g, members in self.groups.items() if uid in members]

    # provisioning, through the admin API like the chat app's back end

    async def provision(self) -> None:
        for uid in self.users:
            await self._admin_put(f"/admin/users/{uid}", {"name": f"user{uid}"})
        for gid, members in self.groups.items():
            await self._admin_put(f"/admin/groups/{gid}", {"name": f"group{gid}",
                                                           "members": members})
        await asyncio.gather(*(self.deposit(uid, START_BALANCE, f"start-{uid}", node=uid % 2)
                               for uid in self.users))

    async def _admin_put(self, path: str, body: dict) -> None:
        response = await self.http.client.fetch(self.http.node_urls[0] + path, method="PUT",
                                                body=json.dumps(body), headers=self.admin)
        assert response.code == 200, (path, response.code)

    async def deposit(self, uid: int, amount: str, ref: str, node: int):
        """A deposit through the admin API, sent again (same ref) until some node answers."""
        return await self._move("deposit", uid, amount, ref, node)

    async def withdraw(self, uid: int, amount: str, ref: str, node: int):
        """A withdrawal (提现) through the admin API, sent again (same ref) until some node
        answers; 409 (not enough money) is an answer."""
        return await self._move("withdraw", uid, amount, ref, node)

    async def _move(self, op: str, uid: int, amount: str, ref: str, node: int, attempts: int = 4):
        args = {"user": uid, "amount": amount, "ref": ref}
        body = json.dumps({"amount": amount, "ref": ref}).encode()
        for attempt in range(attempts):
            call = await self.http.post(op, uid, (node + attempt) % 2,
                                        f"/admin/wallets/{uid}/{op}", body, self.admin, args)
            if call.outcome in ("200", "409"):
                return call
            await asyncio.sleep(0.5 + attempt)
        return call

    # sockets

    def start(self) -> list[asyncio.Task]:
        return [asyncio.ensure_future(self._keep(uid, node)) for uid, node in self.slots]

    async def _keep(self, uid: int, node: int) -> None:
        rng = random.Random(f"{self.seed}:keep:{uid}:{node}")
        token = issue_token(self.token_secret, uid)
        while not self.stopped.is_set():
            session = Session(self.history, uid, node, self.ws_urls[node], token)
            try:
                await session.connect()
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(rng.uniform(*BACKOFF))
                continue
            self.live[uid].append(session)
            lifetime = rng.uniform(*LIFETIME)
            while session.open and not self.stopped.is_set() and (lifetime > 0 or
                                                                  not self.cycling):
                await asyncio.sleep(0.25)
                lifetime -= 0.25
            self.live[uid].remove(session)
            session.close()
            await asyncio.sleep(rng.uniform(0.05, 0.5))

    def session(self, rng: random.Random, uid: int, node: int | None = None) -> Session | None:
        """One of the user's open sockets (on `node` if given), or None."""
        choices = [s for s in self.live[uid] if s.open and (node is None or s.node == node)]
        return rng.choice(choices) if choices else None

    def connected(self, node: int | None = None) -> list[int]:
        return [uid for uid in self.users
                if any(s.open and (node is None or s.node == node) for s in self.live[uid])]

    async def stop(self, tasks: list[asyncio.Task]) -> None:
        self.stopped.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sessions in self.live.values():
            for session in sessions:
                session.close()
