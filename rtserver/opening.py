"""Who may open (拆) a packet: one rule, whichever way the grab path learnt of the packet."""
from rtserver.errors import Forbidden, WrongPassword
from rtserver.limits import says_password
from rtserver.slots import Packet
from storage.schema import PacketType


def check_may_open(packet: Packet, user_id: int, member_since: int | None,
                   said: str | None = None) -> None:
    """Refuse (Forbidden) a user who may not take a share of `packet`, and (WrongPassword) one
    who did not say its phrase.

    A personal packet is for the one person it was sent to: never its sender, who sees 等待对方
    领取 instead. A group packet is for the members of its group, its sender among them, as in
    WeChat, who were members when it was paid: `member_since` is when the user last joined the
    group (None: not a member), looked up by the caller in its node's cache or in MariaDB. Times
    are whole seconds, so a member who joined in the second the packet was paid may grab it. An
    exclusive packet (专属红包) is only for the member it names. A 口令红包 opens to the member
    who says its phrase (`said`). Everything is known from the Packet, so no rule here costs
    the grab a query.
    """
    if packet.type == PacketType.PERSONAL:
        if user_id == packet.sender:
            raise Forbidden("the sender cannot open a personal packet")
        if user_id != packet.for_id:
            raise Forbidden("this packet is not for you")
    elif member_since is None:
        raise Forbidden("not a member of this packet's group")
    elif packet.pay_time and member_since > packet.pay_time:  # unpaid (0): not_paid
        raise Forbidden("joined the group after this packet was sent")
    elif packet.type == PacketType.EXCLUSIVE and user_id != packet.to_user:
        raise Forbidden("this exclusive packet is for someone else")
    if packet.password is not None and not says_password(packet.password, said):
        raise WrongPassword("say the packet's password to open it")


def needs_membership(packet: Packet) -> bool:
    """Whether `check_may_open` needs to know if the user is in the packet's group."""
    return packet.type != PacketType.PERSONAL
