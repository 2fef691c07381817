"""In-process caches of what the hot paths would otherwise ask MariaDB or Redis every time.

What a packet is (sender, room, number, expiry) and what each of its shares holds never
change once paid, so they are kept as long as there is room. Group members and user names can
change: they are kept for a few seconds, and dropped at once when this node changes them.
"""
import asyncio
import collections
import time

MEMBERS_TTL = 5.0  # seconds another node's membership change may take to be seen here
NAMES_TTL = 60.0  # a renamed user may show the old name this long on other nodes
HOLDERS_KEPT = 100_000  # shares of finished packets whose holders are kept, some 10 MB
NOT_FINAL_TTL = 1.0  # seconds a finished packet found not final (still settling) is not asked


class Cache:
    """A bounded map whose entries expire after `ttl` seconds (None: never)."""

    def __init__(self, maxsize: int, ttl: float | None = None):
        self.maxsize, self.ttl = maxsize, ttl
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._loading: dict = {}

    async def get_or_load(self, key, load):
        """The value, loaded by `await load()` when missing: once, however many ask at once
        (a storm of grabs all missing an expired entry would otherwise query it all at once)."""
        value = self.get(key)
        if value is not None:
            return value
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.ensure_future(load())
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        value = await asyncio.shield(loading)
        if value is not None:
            self.put(key, value)
        return value

    async def get_many(self, keys, load) -> dict:
        """The values of `keys`; the missing ones loaded together by `await load(missing)`, which
        returns a dict of them."""
        found = {key: value for key in keys if (value := self.get(key)) is not None}
        missing = set(keys) - set(found)
        if missing:
            for key, value in (await load(missing)).items():
                self.put(key, value)
                found[key] = value
        return found

    def get(self, key):
        item = self._items.get(key)
        if item is None:
            return None
        value, stamp = item
        if self.ttl is not None and time.monotonic() - stamp > self.ttl:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key, value) -> None:
        self._items[key] = (value, time.monotonic())
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def drop(self, key) -> None:
        self._items.pop(key, None)


class _Wait:
    """The future the waiters for one key share, and how many they are."""
    __slots__ = ("done", "waiters")

    def __init__(self, done: asyncio.Future):
        self.done, self.waiters = done, 0


class Awaited(Cache):
    """A cache of facts awaited (a packet's every share booked, or its finish): whoever waits
    for one is woken when it is put, by this node's finish or another node's event."""

    def __init__(self, maxsize: int):
        super().__init__(maxsize)
        self._waits: dict[object, _Wait] = {}

    def put(self, key, value) -> None:
        super().put(key, value)
        wait = self._waits.pop(key, None)
        if wait is not None:
            wait.done.set_result(None)

    def awaited(self, key) -> bool:
        """Whether someone waits for `key` now."""
        return key in self._waits

    async def until_put(self, key, timeout: float | None) -> bool:
        """Whether `key` is known, waiting up to `timeout` seconds for it (None: until it is)."""
        if self.get(key) is not None:
            return True
        wait = self._waits.get(key)
        if wait is None:
            wait = self._waits[key] = _Wait(asyncio.get_running_loop().create_future())
        wait.waiters += 1
        try:
            await asyncio.wait_for(asyncio.shield(wait.done), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            wait.waiters -= 1
            if not wait.waiters and self._waits.get(key) is wait:  # it may never come (voided)
                del self._waits[key]
        return self.get(key) is not None


class Caches:
    def __init__(self, max_shares: int):
        self.packets = Cache(50_000)  # rp_id → slot meta
        self.shares = Cache(50_000)  # rp_id → its shares by slot (storage.packets.ShareBook)
        self.members = Cache(50_000, MEMBERS_TTL)  # group id → {user id: when they last joined}
        self.names = Cache(500_000, NAMES_TTL)  # user id → name
        self.finished = Awaited(50_000)  # rp_id → True: finished, nothing left to finish
        # rp_id → True: every share booked (finished, or about to be)
        self.booked = Awaited(50_000)
        # rp_id → {user id: fen} of a paid, finished packet (final): for the taps that come
        # after the last share. Bounded in shares, ~100 bytes each.
        self.holders = Cache(max(1, HOLDERS_KEPT // max_shares))
        # rp_id → True: finished but not final when last asked (its payment or settlement is
        # still to come): its taps go through Redis, and MariaDB is asked again a second later.
        self.not_final = Cache(50_000, NOT_FINAL_TTL)

    def packet_finished(self, rp_id: int) -> None:
        """Remember a packet finished, here or on another node (its packet.state event)."""
        self.finished.put(rp_id, True)
        self.booked.put(rp_id, True)
