"""The line at the header gate: peers take turns, each one's items in the order they came."""
from rtserver.turns import TakingTurns


def line_of(*arrivals: tuple[str, int]) -> TakingTurns:
    line = TakingTurns()
    for peer, item in arrivals:
        line.add(peer, item)
    return line


def test_peers_take_turns_and_each_peers_items_keep_their_order():
    line = line_of(("flood", 1), ("flood", 2), ("flood", 3), ("alice", 4), ("flood", 5),
                   ("bob", 6))
    assert [line.next() for _ in range(len(line))] == [1, 4, 6, 2, 3, 5]
    assert len(line) == 0 and list(line) == []


def test_making_room_takes_the_oldest_of_the_peer_with_the_most():
    line = line_of(("alice", 1), ("flood", 2), ("flood", 3))
    assert line.oldest_of_busiest() == 2
    assert sorted(line) == [1, 3] and len(line) == 2


def test_expired_items_are_taken_from_every_peer_up_to_its_first_still_in_time():
    line = line_of(("a", 1), ("a", 2), ("a", 9), ("b", 3), ("b", 8), ("c", 7))
    assert sorted(line.take_expired(lambda item: item < 5)) == [1, 2, 3]
    assert sorted(line) == [7, 8, 9] and len(line) == 3
    assert line.next() == 9, "a's turn is still first"
