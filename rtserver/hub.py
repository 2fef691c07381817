"""The connection hub: who is connected, in which rooms, and the fan-out of events to them."""
import collections
import logging
from typing import Protocol

from rtserver import codec

log = logging.getLogger("rtserver.hub")


def user_room(user_id: int) -> str:
    return f"u:{user_id}"


def group_room(group_id: int) -> str:
    return f"g:{group_id}"


class Connection(Protocol):
    user_id: int
    subprotocol: str

    def send_event(self, data: bytes | str) -> None: ...

    def shut(self, code: int, reason: str) -> None: ...

    def newer_balance(self, ledger_id: int) -> bool:
        """Whether a balance made by ledger row `ledger_id` is newer than any the socket has
        been told (and, if so, remember it as told)."""


class Hub:
    """Rooms of live connections. A broadcast is encoded once per sub-protocol, not per socket."""

    def __init__(self):
        self._rooms: dict[str, set[Connection]] = collections.defaultdict(set)
        self._joined: dict[Connection, set[str]] = {}

    def connect(self, conn: Connection, rooms: list[str]) -> None:
        self._joined[conn] = set()
        for room in rooms:
            self._join(conn, room)

    def disconnect(self, conn: Connection) -> None:
        for room in self._joined.pop(conn, ()):
            members = self._rooms[room]
            members.discard(conn)
            if not members:
                del self._rooms[room]

    def user_joined(self, user_id: int, room: str) -> None:
        """Put every connection of a user into a room they were just added to."""
        for conn in list(self._rooms.get(user_room(user_id), ())):
            self._join(conn, room)

    def user_left(self, user_id: int, room: str) -> None:
        for conn in list(self._rooms.get(user_room(user_id), ())):
            self._joined[conn].discard(room)
            self._rooms[room].discard(conn)
            if not self._rooms[room]:
                del self._rooms[room]

    def publish(self, rooms: list[str], event: dict) -> int:
        """Send an event to every connection in any of the rooms, once each; return how many."""
        targets = set()
        for room in rooms:
            targets.update(self._rooms.get(room, ()))
        return self._send(targets, event)

    def _send(self, targets, event: dict) -> int:
        if event.get("ev") == "wallet":
            # A balance is state, not news: a socket told a newer (or this very) one already —
            # by another node's event that overtook this one, or its catch-up — needs nothing.
            targets = [conn for conn in targets if conn.newer_balance(event["ledger_id"])]
        frames = {}
        for conn in targets:
            if conn.subprotocol not in frames:
                frames[conn.subprotocol] = codec.encode(conn.subprotocol, event)
            conn.send_event(frames[conn.subprotocol])
        return len(targets)

    def publish_to_everyone(self, event: dict) -> int:
        return self._send(list(self._joined), event)

    def count(self) -> int:
        return len(self._joined)

    def shut_all(self, code: int, reason: str) -> None:
        for conn in list(self._joined):
            conn.shut(code, reason)

    def _join(self, conn: Connection, room: str) -> None:
        self._rooms[room].add(conn)
        self._joined[conn].add(room)
