"""Who may open a packet: one rule, tested without servers."""
import pytest

from rtserver.errors import Forbidden
from rtserver.opening import check_may_open, needs_membership
from rtserver.slots import Packet
from storage.schema import PacketType

SENDER, FRIEND, STRANGER, GROUP = 1, 2, 3, 900
PAID = 1_800_000_000  # when the packets here were paid


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
