"""Who may open a packet: one rule, tested without servers."""
import pytest

from rtserver.errors import Forbidden, WrongPassword
from rtserver.opening import check_may_open, needs_membership
from rtserver.slots import Packet
from storage.schema import PacketType

SENDER, FRIEND, STRANGER, GROUP = 1, 2, 3, 900
PAID = 1_800_000_000  # when the packets here were paid
MEMBER = PAID - 60  # when a member who may open them joined


def packet(type_: PacketType) -> Packet:
    for_id = FRIEND if type_ == PacketType.PERSONAL else GROUP
    return Packet(id=7, sender=SENDER, type=type_, for_id=for_id, number=1, expire_time=0,
                  pay_time=PAID)


def test_a_personal_packet_is_for_its_recipient_alone():
    personal = packet(PacketType.PERSONAL)
    assert not needs_membership(personal)
    check_may_open(personal, FRIEND, member_since=None)
    with pytest.raises(Forbidden, match="sender"):
        check_may_open(personal, SENDER, member_since=None)
    with pytest.raises(Forbidden, match="not for you"):
        check_may_open(personal, STRANGER, member_since=PAID - 60)


@pytest.mark.parametrize("type_", [PacketType.GROUP_NORMAL, PacketType.GROUP_LUCKY])
def test_a_group_packet_is_for_the_members_of_its_group_its_sender_among_them(type_):
    group = packet(type_)
    assert needs_membership(group)
    check_may_open(group, SENDER, member_since=PAID - 60)
    check_may_open(group, FRIEND, member_since=PAID - 60)
    for user_id in (SENDER, STRANGER):
        with pytest.raises(Forbidden, match="not a member"):
            check_may_open(group, user_id, member_since=None)


@pytest.mark.parametrize("type_", [PacketType.GROUP_NORMAL, PacketType.GROUP_LUCKY])
def test_a_group_packet_is_only_for_who_was_a_member_when_it_was_paid(type_):
    """WeChat's rule (v1.1 replaces v1's): a late joiner may not grab what was sent before."""
    group = packet(type_)
    check_may_open(group, FRIEND, member_since=PAID)  # joined in the second it was paid
    with pytest.raises(Forbidden, match="joined the group after"):
        check_may_open(group, FRIEND, member_since=PAID + 1)


def test_an_exclusive_packet_is_for_the_one_member_it_names():
    exclusive = Packet(id=7, sender=SENDER, type=PacketType.EXCLUSIVE, for_id=GROUP, number=1,
                       expire_time=0, pay_time=PAID, to_user=FRIEND)
    assert needs_membership(exclusive)
    check_may_open(exclusive, FRIEND, member_since=MEMBER)
    for user_id in (SENDER, STRANGER):  # its sender too: it is someone else's
        with pytest.raises(Forbidden, match="someone else"):
            check_may_open(exclusive, user_id, member_since=MEMBER)
    with pytest.raises(Forbidden, match="not a member"):  # one who left the group since
        check_may_open(exclusive, FRIEND, member_since=None)


@pytest.mark.parametrize("said", ["芝麻开门", "  芝麻开门 ", "\t芝麻开门\n"])
def test_a_password_packet_opens_to_its_phrase_spaces_around_it_ignored(said):
    check_may_open(with_password("芝麻开门"), FRIEND, member_since=MEMBER, said=said)


@pytest.mark.parametrize("said", [None, "", "芝麻", "芝麻 开门", "芝麻开门吧", "ZHIMA", 7, ["芝麻开门"]])
def test_a_password_packet_refuses_any_other_phrase(said):
    with pytest.raises(WrongPassword):
        check_may_open(with_password("芝麻开门"), FRIEND, member_since=MEMBER, said=said)


def test_a_stranger_to_a_password_packet_is_forbidden_before_any_phrase_is_judged():
    with pytest.raises(Forbidden):
        check_may_open(with_password("open"), STRANGER, member_since=None, said="open")


def with_password(password: str) -> Packet:
    return Packet(id=7, sender=SENDER, type=PacketType.GROUP_LUCKY, for_id=GROUP, number=3,
                  expire_time=0, pay_time=PAID, password=password)


def test_the_packet_travels_through_redis_meta_whole():
    for packet_ in (with_password("口令"), packet(PacketType.GROUP_NORMAL),
                    Packet(7, SENDER, PacketType.EXCLUSIVE, GROUP, 1, 99, to_user=FRIEND)):
        meta = {k: str(v) for k, v in packet_.meta().items()}  # Redis gives back strings
        assert Packet.of_meta(7, meta) == packet_
