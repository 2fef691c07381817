"""Taking grab slots in Redis, the grabs of one turn of the event loop together."""
import asyncio

from rtserver.batching import Batcher
from storage import slots
from storage.redis_client import Keys


class SlotTaker:
    """Runs concurrent grabs together: the grab scripts of one turn of the event loop go to
    Redis as one call, one round trip and one reply instead of one each."""

    def __init__(self, redis, keys: Keys):
        self.calls = Batcher(lambda grabs: slots.take(redis, keys, grabs))

    def take(self, rp_id: int, user_id: int) -> asyncio.Future:
        """The outcome of a grab script for one user: a slot won, held already, or none left."""
        return self.calls.submit((rp_id, user_id))
