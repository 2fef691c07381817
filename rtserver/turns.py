"""Waiting in line, one peer at a time: each peer's items in the order they came, the peers
taking turns (round-robin, as a fair queue does). One peer's flood of requests waits behind
itself, not in front of everyone else."""
import collections
from typing import Callable, Iterator


class TakingTurns:
    def __init__(self):
        # Peers in the order of their next turn, each with its items, oldest first.
        self._lines: collections.OrderedDict = collections.OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator:
        return (item for line in self._lines.values() for item in line)

    def add(self, peer, item) -> None:
        self._lines.setdefault(peer, collections.deque()).append(item)
        self._count += 1

    def next(self):
        """The oldest item of the peer whose turn it is; that peer goes to the back."""
        peer, line = next(iter(self._lines.items()))
        return self._taken(peer, line, to_the_back=True)

    def oldest_of_busiest(self):
        """Take the oldest item of the peer with the most waiting (to make room)."""
        peer, line = max(self._lines.items(), key=lambda pair: len(pair[1]))
        return self._taken(peer, line, to_the_back=False)

    def take_expired(self, expired: Callable[[object], bool]) -> list:
        """Take every item `expired` says is, each peer's in order up to its first that is not
        (a peer's items expire in the order they came)."""
        taken = []
        for peer, line in list(self._lines.items()):
            while line and expired(line[0]):
                taken.append(self._taken(peer, line, to_the_back=False))
        return taken

    def clear(self) -> None:
        self._lines.clear()
        self._count = 0

    def _taken(self, peer, line: collections.deque, to_the_back: bool):
        item = line.popleft()
        self._count -= 1
        if not line:
            del self._lines[peer]
        elif to_the_back:
            self._lines.move_to_end(peer)
        return item
