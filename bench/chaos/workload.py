"""What the users do: send packets of every type (from the balance, some with a 支付密码, and
through the sandbox), grab them in storms from many sockets, tap old ones, chat, and receive
deposits and withdraw money.

Each actor draws from a random.Random of its own, seeded from the run's seed and its name, so
the same seed gives the same choices whatever the interleaving.
"""
import asyncio
import random

from bench.chaos.people import People
from bench.chaos.sandbox import Sandbox
from rtserver.money import format_fen

SENDERS = 3  # actors sending packets side by side
FLOWS_AT_ONCE = 8  # packet flows (create, pay, storm) running at once, at most
STORM_GRABBERS = 30
RETRIED = {"closed", "timeout", "unavailable", "rate_limited", "internal"}
FINAL_TAPPERS = 3  # members who tap each packet once more at the end
PERSONAL, NORMAL, LUCKY = 1, 2, 3
WRONG_PIN = 0.05  # balance payments of a user with a 支付密码 first tried with a wrong one


def pin_of(uid: int) -> str | None:
    """Every third user guards their balance with a 支付密码 (six digits of their own)."""
    return f"{uid:06d}" if uid % 3 == 0 else None


def wrong(pin: str) -> str:
    return pin[:-1] + str((int(pin[-1]) + 1) % 10)


class Workload:
    def __init__(self, seed: int, people: People, sandbox_secret: str):
        self.seed, self.people = seed, people
        self.sandbox = Sandbox(people.http, sandbox_secret, self.spawn)
        self.packets: dict[int, dict] = {}  # rp_id -> {"type", "members", "sender"}
        self.pending: set[asyncio.Task] = set()
        self.actors: list[asyncio.Task] = []
        self.flows = asyncio.Semaphore(FLOWS_AT_ONCE)
        self.deposits = 0
        self.pins_set: set[int] = set()  # users whose 支付密码 the server has
        self.clock = people.history.now

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def start(self, create_until: float, until: float) -> None:
        self.actors = [asyncio.ensure_future(actor) for actor in (
            *(self._sender(i, create_until) for i in range(SENDERS)),
            self._chat(until), self._deposits(until), self._withdrawals(until),
            self._taps(until))]

    async def stop(self, timeout: float) -> None:
        """Wait for the actors and every flow they left running (late notifications), bounded."""
        await asyncio.gather(*self.actors, return_exceptions=True)
        if self.pending:
            await asyncio.wait(list(self.pending), timeout=timeout)

    async def ask(self, rng: random.Random, uid: int, op: str, attempts: int = 3, **args):
        """A request from one of the user's sockets, sent again while it may be retried."""
        call = None
        for _ in range(attempts):
            session = self.people.session(rng, uid)
            call = await session.call(op, **args) if session else None
            if call is not None and call.outcome not in RETRIED:
                return call
            await asyncio.sleep(rng.uniform(0.3, 1.0))
        return call

    # packets

    async def _sender(self, index: int, until: float) -> None:
        rng = self.rng(f"sender{index}")
        while self.clock() < until:
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            await self.flows.acquire()
            self.spawn(self._flow(random.Random(rng.getrandbits(64))))

    async def _flow(self, rng: random.Random) -> None:
        try:
            packet = await self.send_packet(rng, rng.choice([PERSONAL, NORMAL, LUCKY, LUCKY]))
            if packet is not None:
                await self.storm(rng, packet)
        finally:
            self.flows.release()

    async def send_packet(self, rng, kind, sender=None, number=None, pay_type=None):
        """Create and pay one packet; its record, or None if it never became grabbable."""
        sender = sender or rng.choice(self.people.connected() or self.people.users)
        group = rng.choice(self.people.groups_of(sender))
        members = self.people.groups[group]
        if kind == PERSONAL:
            to = rng.choice([m for m in members if m != sender])
            args = {"for_id": to, "number": 1, "amount": format_fen(rng.randint(1, 500))}
            members = [to]
        else:
            number = number or rng.randint(2, min(15, len(members) - 1))
            each = rng.randint(1, 100)
            total = each if kind == NORMAL else rng.randint(number, 1000)
            args = {"for_id": group, "number": number, "amount": format_fen(total)}
        pay_type = pay_type or ("sandbox" if rng.random() < 0.4 else "balance")
        created = await self.ask(rng, sender, "packet.create", type=kind, pay_type=pay_type,
                                 client_key=f"k{rng.getrandbits(48)}", **args)
        if created is None or created.outcome != "ok":
            return None
        rp_id = created.reply["rp_id"]
        packet = {"rp_id": rp_id, "type": kind, "members": members, "sender": sender}
        self.packets[rp_id] = packet
        if pay_type == "balance":
            ok = await self._pay(rng, sender, rp_id)
        else:
            ok = await self.sandbox.pay(rng, sender, rp_id, created.reply["order"],
                                        lambda: self._sync(rng, sender, rp_id))
        return packet if ok else None

    async def _pay(self, rng, uid: int, rp_id: int) -> bool:
        """Pay from the balance; a user with a 支付密码 types it, now and then wrong first."""
        pin = pin_of(uid)
        if pin is None:
            paid = await self.ask(rng, uid, "packet.pay", rp_id=rp_id)
        else:
            await self._set_pin(rng, uid, pin)
            if rng.random() < WRONG_PIN:
                await self.ask(rng, uid, "packet.pay", rp_id=rp_id, pin=wrong(pin))
            paid = await self.ask(rng, uid, "packet.pay", rp_id=rp_id, pin=pin)
        return paid is not None and paid.outcome == "ok"

    async def _set_pin(self, rng, uid: int, pin: str) -> None:
        if uid in self.pins_set:
            return
        call = await self.ask(rng, uid, "wallet.set_pin", pin=pin)
        # pin_required: it is set already (the reply to an earlier try was lost)
        if call is not None and call.outcome in ("ok", "pin_required"):
            self.pins_set.add(uid)

    async def _sync(self, rng, uid: int, rp_id: int) -> bool:
        call = await self.ask(rng, uid, "packet.sync_paid", rp_id=rp_id,
                              result={"resultStatus": "9000", "memo": "chaos"})
        return call is not None and call.outcome == "ok"

    def grab_tasks(self, rng, packet: dict, node: int | None = None) -> list[asyncio.Task]:
        """Start a storm: members grab from their sockets (on `node` if given), some from two
        sockets at once; a grab answered `unavailable` is tried again, as an app would."""
        members = [m for m in packet["members"] if m != packet["sender"] or
                   packet["type"] != PERSONAL]
        members = [m for m in rng.sample(members, min(len(members), STORM_GRABBERS))
                   if self.people.session(rng, m, node)]
        tasks = []
        for uid in members:
            taps = 2 if rng.random() < 0.2 else 1
            for _ in range(taps):
                session = self.people.session(rng, uid, node)
                tasks.append(asyncio.ensure_future(self._grab(rng, session, uid,
                                                              packet["rp_id"])))
        return tasks

    async def _grab(self, rng, session, uid: int, rp_id: int) -> None:
        call = await session.call("packet.grab", rp_id=rp_id)
        if call is not None and call.outcome == "unavailable":
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            await self.ask(rng, uid, "packet.grab", attempts=1, rp_id=rp_id)

    async def storm(self, rng, packet: dict) -> None:
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        await asyncio.gather(*self.grab_tasks(rng, packet))

    async def storm_on(self, rng, node: int) -> list[asyncio.Task]:
        """A 15-share lucky packet grabbed by the members on one node; returns once the grabs
        are on the wire (a fault is timed from then). Empty when none could be paid."""
        on_node = self.people.connected(node)
        if not on_node:
            return []
        group = max(self.people.groups, key=lambda g: len(set(self.people.groups[g]) &
                                                           set(on_node)))
        sender = rng.choice([m for m in self.people.groups[group] if m in on_node])
        members = len(self.people.groups[group])
        packet = await self.send_packet(rng, LUCKY, sender=sender, pay_type="balance",
                                        number=min(15, members - 1))
        if packet is None:
            return []
        tasks = self.grab_tasks(rng, packet, node)
        await asyncio.sleep(0)  # each grab task runs to its first wait: its frame is sent
        return tasks

    async def _taps(self, until: float) -> None:
        """Members tap packets again later: `already`, `too_slow`, `expired` answers."""
        rng = self.rng("taps")
        while self.clock() < until:
            await asyncio.sleep(rng.uniform(0.1, 0.4))
            if self.packets:
                packet = self.packets[rng.choice(list(self.packets))]
                self.spawn(self.ask(rng, rng.choice(packet["members"]), "packet.grab",
                                    attempts=1, rp_id=packet["rp_id"]))

    async def final_taps(self) -> None:
        """Once every clock has run out, a few members of every packet tap it once more."""
        rng = self.rng("final")
        gate = asyncio.Semaphore(24)

        async def tap(uid, rp_id):
            async with gate:
                await self.ask(rng, uid, "packet.grab", attempts=1, rp_id=rp_id)

        await asyncio.gather(*(tap(uid, rp_id) for rp_id, packet in self.packets.items()
                               for uid in rng.sample(packet["members"],
                                                     min(FINAL_TAPPERS, len(packet["members"])))))

    # chat and deposits

    async def _chat(self, until: float) -> None:
        rng = self.rng("chat")
        while self.clock() < until:
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            uid = rng.choice(self.people.users)
            self.spawn(self.ask(rng, uid, "chat.send", attempts=1, to_type="group",
                                to_id=rng.choice(self.people.groups_of(uid)),
                                text=f"新年快乐 {rng.randrange(1000)}"))

    async def _deposits(self, until: float) -> None:
        rng = self.rng("deposits")
        while self.clock() < until:
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            self.deposits += 1
            self.spawn(self.people.deposit(rng.choice(self.people.users),
                                           format_fen(rng.randint(100, 5000)),
                                           f"chaos-{self.seed}-{self.deposits}",
                                           node=rng.randrange(2)))

    async def _withdrawals(self, until: float) -> None:
        """提现 of a user's money, racing their payments and grabs; now and then more than
        they hold (409)."""
        rng, count = self.rng("withdrawals"), 0
        while self.clock() < until:
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            count += 1
            self.spawn(self.people.withdraw(rng.choice(self.people.users),
                                            format_fen(rng.randint(100, 8000)),
                                            f"chaos-{self.seed}-w{count}",
                                            node=rng.randrange(2)))
