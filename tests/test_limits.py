"""Packet rules: every refusal carries the docs/protocol.md code the client expects."""

import dataclasses

import pytest

from rtserver.errors import BadRequest, InvalidAmount, InvalidNumber
from rtserver.config import load
from rtserver.limits import Limits, PacketPlan, limits_of, password_of, plan_packet
from storage.schema import PacketType

DEFAULT_INTRO = "恭喜发财，大吉大利"
BIG_GROUP = 500


@pytest.mark.parametrize("type, number, amount, group_size, total, single", [
    # personal: exact bounds
    (PacketType.PERSONAL, 1, 1, None, 1, 1),
    (PacketType.PERSONAL, 1, 20000, None, 20000, 20000),
    # group normal: amount is each share
    (PacketType.GROUP_NORMAL, 1, 1, 3, 1, 1),
    (PacketType.GROUP_NORMAL, 3, 20000, 3, 60000, 20000),
    (PacketType.GROUP_NORMAL, 100, 20000, BIG_GROUP, 2000000, 20000),
    (PacketType.GROUP_NORMAL, 100, 1, 100, 100, 1),
    # group lucky: amount is the total
    (PacketType.GROUP_LUCKY, 1, 1, 2, 1, 0),
    (PacketType.GROUP_LUCKY, 100, 100, BIG_GROUP, 100, 0),          # 0.01 each
    (PacketType.GROUP_LUCKY, 100, 2000000, BIG_GROUP, 2000000, 0),  # 100 shares of 200.00 = 20000.00
    (PacketType.GROUP_LUCKY, 2, 40000, 2, 40000, 0),
    (PacketType.GROUP_LUCKY, 5, 12345, 5, 12345, 0),
])
def test_plan_accepts(type, number, amount, group_size, total, single):
    plan = plan_packet(type, number, amount, None, group_size)
    assert plan == PacketPlan(type=type, number=number, total=total, single=single, intro=DEFAULT_INTRO)


@pytest.mark.parametrize("type, number, amount, group_size, error", [
    # type
    (0, 1, 100, None, BadRequest),
    (5, 1, 100, None, BadRequest),
    (True, 1, 100, None, BadRequest),
    ("1", 1, 100, None, BadRequest),
    (None, 1, 100, None, BadRequest),
    (1.0, 1, 100, None, BadRequest),
    # number
    (PacketType.PERSONAL, 2, 100, None, InvalidNumber),
    (PacketType.PERSONAL, 0, 100, None, InvalidNumber),
    (PacketType.PERSONAL, True, 100, None, InvalidNumber),
    (PacketType.GROUP_NORMAL, 0, 100, BIG_GROUP, InvalidNumber),
    (PacketType.GROUP_NORMAL, -1, 100, BIG_GROUP, InvalidNumber),
    (PacketType.GROUP_NORMAL, 101, 100, BIG_GROUP, InvalidNumber),
    (PacketType.GROUP_NORMAL, 4, 100, 3, InvalidNumber),             # above the group's size
    (PacketType.GROUP_LUCKY, 0, 100, BIG_GROUP, InvalidNumber),
    (PacketType.GROUP_LUCKY, 101, 10100, BIG_GROUP, InvalidNumber),
    (PacketType.GROUP_LUCKY, 4, 100, 3, InvalidNumber),
    (PacketType.GROUP_LUCKY, True, 100, BIG_GROUP, InvalidNumber),
    (PacketType.GROUP_LUCKY, 2.0, 100, BIG_GROUP, InvalidNumber),
    (PacketType.GROUP_LUCKY, "2", 100, BIG_GROUP, InvalidNumber),
    (PacketType.GROUP_LUCKY, None, 100, BIG_GROUP, InvalidNumber),
    # amount <= 0 and not fen
    (PacketType.PERSONAL, 1, 0, None, InvalidAmount),
    (PacketType.PERSONAL, 1, -1, None, InvalidAmount),
    (PacketType.GROUP_NORMAL, 2, 0, 2, InvalidAmount),
    (PacketType.GROUP_LUCKY, 2, 0, 2, InvalidAmount),
    (PacketType.GROUP_LUCKY, 2, -100, 2, InvalidAmount),
    (PacketType.PERSONAL, 1, 1.5, None, InvalidAmount),
    (PacketType.PERSONAL, 1, "100", None, InvalidAmount),
    (PacketType.PERSONAL, 1, True, None, InvalidAmount),
    (PacketType.PERSONAL, 1, None, None, InvalidAmount),
    # personal upper bound
    (PacketType.PERSONAL, 1, 20001, None, InvalidAmount),
    # group normal: each share within 0.01..200.00
    (PacketType.GROUP_NORMAL, 1, 20001, 3, InvalidAmount),
    (PacketType.GROUP_NORMAL, 100, 20001, BIG_GROUP, InvalidAmount),  # 100 x 200.01
    # group lucky: every share must fit in 0.01..200.00
    (PacketType.GROUP_LUCKY, 100, 99, BIG_GROUP, InvalidAmount),       # less than 0.01 each
    (PacketType.GROUP_LUCKY, 100, 2000001, BIG_GROUP, InvalidAmount),  # more than 200.00 each
    (PacketType.GROUP_LUCKY, 1, 20001, 2, InvalidAmount),
    (PacketType.GROUP_LUCKY, 2, 40001, 2, InvalidAmount),
    (PacketType.GROUP_LUCKY, 2, 1, 2, InvalidAmount),
])
def test_plan_refuses(type, number, amount, group_size, error):
    with pytest.raises(error) as exc:
        plan_packet(type, number, amount, None, group_size)
    assert exc.type is error


@pytest.mark.parametrize("error, code", [
    (BadRequest, "bad_request"), (InvalidNumber, "invalid_number"), (InvalidAmount, "invalid_amount"),
])
def test_codes_match_protocol(error, code):
    assert error.code == code


def test_max_payment():
    limits = Limits(max_payment=50000)
    assert plan_packet(PacketType.GROUP_NORMAL, 5, 10000, None, 10, limits).total == 50000
    assert plan_packet(PacketType.GROUP_LUCKY, 5, 50000, None, 10, limits).total == 50000
    with pytest.raises(InvalidAmount):
        plan_packet(PacketType.GROUP_NORMAL, 5, 10001, None, 10, limits)
    with pytest.raises(InvalidAmount):
        plan_packet(PacketType.GROUP_LUCKY, 5, 50001, None, 10, limits)
    with pytest.raises(InvalidAmount):
        plan_packet(PacketType.PERSONAL, 1, 50001, None, None, Limits(max_personal=100000, max_payment=50000))


def test_nonstandard_limits():
    limits = Limits(max_shares=5, min_share=100, max_share=1000, max_personal=500)
    assert plan_packet(PacketType.GROUP_LUCKY, 5, 500, None, 10, limits).total == 500
    with pytest.raises(InvalidNumber):
        plan_packet(PacketType.GROUP_LUCKY, 6, 600, None, 10, limits)
    with pytest.raises(InvalidAmount):
        plan_packet(PacketType.GROUP_LUCKY, 5, 499, None, 10, limits)
    with pytest.raises(InvalidAmount):
        plan_packet(PacketType.GROUP_NORMAL, 2, 99, None, 10, limits)
    with pytest.raises(InvalidAmount):
        plan_packet(PacketType.PERSONAL, 1, 501, None, None, limits)


def test_limits_defaults_and_frozen():
    limits = Limits()
    assert (limits.max_shares, limits.min_share, limits.max_share, limits.max_personal,
            limits.max_payment, limits.max_intro, limits.default_intro) == (
        100, 1, 20000, 20000, 2000000, 25, DEFAULT_INTRO)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_shares = 1


@pytest.mark.parametrize("intro, expected", [
    (None, DEFAULT_INTRO),
    ("", DEFAULT_INTRO),
    ("   ", DEFAULT_INTRO),
    ("\u3000\n", DEFAULT_INTRO),
    ("生日快乐", "生日快乐"),
    ("  生日快乐  ", "生日快乐"),
    ("a" * 25, "a" * 25),
    ("红" * 25, "红" * 25),                 # 25 characters, 75 bytes of UTF-8
    (" " + "红" * 25 + " ", "红" * 25),
    ("🧧" * 25, "🧧" * 25),
])
def test_intro_accepted(intro, expected):
    assert plan_packet(PacketType.PERSONAL, 1, 100, intro, None).intro == expected


@pytest.mark.parametrize("intro", ["a" * 26, "红" * 26, "🧧" * 26, 123, b"hi", ["hi"], True])
def test_intro_refused(intro):
    with pytest.raises(BadRequest):
        plan_packet(PacketType.GROUP_LUCKY, 2, 100, intro, 2)


def test_group_size_required_for_groups():
    with pytest.raises(ValueError):
        plan_packet(PacketType.GROUP_NORMAL, 2, 100, None, None)


def test_an_exclusive_packet_is_one_share_of_a_personal_packets_amounts():
    plan = plan_packet(PacketType.EXCLUSIVE, 1, 20000, None, 3)
    assert (plan.total, plan.single, plan.number) == (20000, 20000, 1)
    assert plan_packet(PacketType.EXCLUSIVE, 1, 1, None, 2).total == 1
    for number in (0, 2, True):
        with pytest.raises(InvalidNumber):
            plan_packet(PacketType.EXCLUSIVE, number, 100, None, 3)
    for amount in (0, 20001):
        with pytest.raises(InvalidAmount):
            plan_packet(PacketType.EXCLUSIVE, 1, amount, None, 3)


@pytest.mark.parametrize("type, password, expected", [
    (PacketType.GROUP_LUCKY, None, None),
    (PacketType.GROUP_LUCKY, "芝麻开门", "芝麻开门"),
    (PacketType.GROUP_NORMAL, " 恭喜发财 ", "恭喜发财"),
    (PacketType.GROUP_NORMAL, "x" * 20, "x" * 20),
    (PacketType.PERSONAL, None, None),
])
def test_password_accepted(type, password, expected):
    assert password_of(type, password) == expected


@pytest.mark.parametrize("type, password", [
    (PacketType.GROUP_LUCKY, ""), (PacketType.GROUP_LUCKY, "   "),
    (PacketType.GROUP_LUCKY, "x" * 21), (PacketType.GROUP_LUCKY, "红" * 21),
    (PacketType.GROUP_LUCKY, 123), (PacketType.GROUP_LUCKY, ["a"]), (PacketType.GROUP_LUCKY, True),
    (PacketType.PERSONAL, "open"), (PacketType.EXCLUSIVE, "open"),
])
def test_password_refused(type, password):
    with pytest.raises(BadRequest):
        password_of(type, password)


def test_limits_come_from_the_flags_and_go_to_hello_as_the_wire_writes_them():
    settings = load(["--max-shares", "10", "--min-share", "0.10", "--max-share", "5.00",
                     "--max-personal", "8.88", "--max-payment", "50.00"])
    limits = limits_of(settings)
    assert (limits.max_shares, limits.min_share, limits.max_share, limits.max_personal,
            limits.max_payment) == (10, 10, 500, 888, 5000)
    assert limits.view() == {"max_shares": 10, "min_share": "0.10", "max_share": "5.00",
                             "max_personal": "8.88", "max_payment": "50.00", "intro_max": 25}
    assert limits_of(load([])) == Limits()


@pytest.mark.parametrize("argv", [["--min-share", "1"], ["--max-share", "abc"],
                                  ["--min-share", "0.00"], ["--max-shares", "0"],
                                  ["--min-share", "3.00", "--max-share", "2.00"]])
def test_limits_that_make_no_sense_stop_the_server(argv):
    with pytest.raises(SystemExit):
        load(argv)
