"""Who may open a packet: one rule, tested without servers."""
import pytest

from rtserver.errors import Forbidden
from rtserver.opening import check_may_open, needs_membership
from rtserver.slots import Packet
from storage.schema import PacketType

SENDER, FRIEND, STRANGER, GROUP = 1, 2, 3, 900


def packet(type_: PacketType) -> Packet:
    for_id = FRIEND if type_ == PacketType.PERSONAL else GROUP
    return Packet(id=7, sender=SENDER, type=type_, for_id=for_id, number=1, expire_time=0)


def test_a_personal_packet_is_for_its_recipient_alone():
    personal = packet(PacketType.PERSONAL)
    assert not needs_membership(personal)
    check_may_open(personal, FRIEND, is_member=False)
    with pytest.raises(Forbidden, match="sender"):
        check_may_open(personal, SENDER, is_member=False)
    with pytest.raises(Forbidden, match="not for you"):
        check_may_open(personal, STRANGER, is_member=True)


@pytest.mark.parametrize("type_", [PacketType.GROUP_NORMAL, PacketType.GROUP_LUCKY])
def test_a_group_packet_is_for_the_members_of_its_group_its_sender_among_them(type_):
    group = packet(type_)
    assert needs_membership(group)
    check_may_open(group, SENDER, is_member=True)
    check_may_open(group, FRIEND, is_member=True)
    for user_id in (SENDER, STRANGER):
        with pytest.raises(Forbidden, match="not a member"):
            check_may_open(group, user_id, is_member=False)
