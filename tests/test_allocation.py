"""Allocation: shares always add up, stay within bounds, and come out shuffled."""

import random
from collections import Counter

import pytest
from hypothesis import given, strategies as st

from rtserver.allocation import split_equal, split_lucky


def check_split(shares, total, number, min_share, max_share):
    assert len(shares) == number
    assert sum(shares) == total
    assert all(isinstance(s, int) for s in shares)
    assert all(min_share <= s <= max_share for s in shares), shares


@given(st.data())
def test_split_lucky_default_bounds(data):
    number = data.draw(st.integers(min_value=1, max_value=100), label="number")
    total = data.draw(st.integers(min_value=number, max_value=number * 20000), label="total")
    check_split(split_lucky(total, number), total, number, 1, 20000)


@given(st.data())
def test_split_lucky_any_bounds(data):
    min_share = data.draw(st.integers(min_value=0, max_value=500), label="min_share")
    max_share = data.draw(st.integers(min_value=min_share, max_value=min_share + 1000), label="max_share")
    number = data.draw(st.integers(min_value=1, max_value=100), label="number")
    total = data.draw(st.integers(min_value=number * min_share, max_value=number * max_share), label="total")
    seed = data.draw(st.integers(min_value=0, max_value=2**32), label="seed")
    shares = split_lucky(total, number, min_share, max_share, rng=random.Random(seed))
    check_split(shares, total, number, min_share, max_share)


@pytest.mark.parametrize("total, number, min_share, max_share", [
    (1, 1, 1, 20000),
    (100, 100, 1, 20000),              # every share exactly the minimum
    (2000000, 100, 1, 20000),          # every share exactly the maximum
    (1999999, 100, 1, 20000),          # one fen short of all-maximum
    (20000, 1, 1, 20000),
    (0, 5, 0, 10),
    (50, 5, 10, 10),                   # min == max
    (299, 3, 1, 100),
])
def test_split_lucky_edges(total, number, min_share, max_share):
    for seed in range(20):
        shares = split_lucky(total, number, min_share, max_share, rng=random.Random(seed))
        check_split(shares, total, number, min_share, max_share)


@pytest.mark.parametrize("total, number, min_share, max_share", [
    (99, 100, 1, 20000),               # less than a fen each
    (2000001, 100, 1, 20000),          # more than the maximum each
    (10, 0, 1, 20000),
    (10, -1, 1, 20000),
    (10, 2, 6, 5),                     # empty bounds
])
def test_split_lucky_refuses_infeasible(total, number, min_share, max_share):
    with pytest.raises(ValueError):
        split_lucky(total, number, min_share, max_share)


def test_split_lucky_is_random_and_shuffled():
    # A fixed-seed rng makes this deterministic; a CSPRNG is the default.
    rng = random.Random(7)
    firsts = Counter(split_lucky(1000, 10, rng=rng)[0] for _ in range(500))
    assert len(firsts) > 50
    # The double-mean keeps each position's expected share near the mean, shuffled or not.
    means = [sum(col) / 2000 for col in zip(*(split_lucky(1000, 10, rng=rng) for _ in range(2000)))]
    assert all(80 < m < 120 for m in means), means


def test_split_lucky_uses_system_random_by_default():
    shares = split_lucky(10000, 10)
    check_split(shares, 10000, 10, 1, 20000)


@given(st.integers(min_value=0, max_value=20000), st.integers(min_value=1, max_value=100))
def test_split_equal(single, number):
    shares = split_equal(single, number)
    assert shares == [single] * number
    assert sum(shares) == single * number


@pytest.mark.parametrize("single, number", [(100, 0), (100, -1), (-1, 3)])
def test_split_equal_refuses(single, number):
    with pytest.raises(ValueError):
        split_equal(single, number)
