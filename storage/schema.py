"""What the numbers stored in `red_packet` (migrations 0003, 0005, 0012) and `outbound_events`
(0014) mean: one name for each, used by the SQL here, by the rules and views above, and by the
tests."""
from enum import IntEnum


class PacketType(IntEnum):
    PERSONAL = 1  # 个人红包: for one person of a 1:1 chat, one share
    GROUP_NORMAL = 2  # 普通红包: a group's equal shares
    GROUP_LUCKY = 3  # 拼手气红包: a group's random shares, and 手气最佳 once all are taken
    EXCLUSIVE = 4  # 专属红包: a group packet of one share that only its `to_user` may open


class PayStatus(IntEnum):
    UNPAID = 0
    PAID = 1  # the money is here: a grab is credited at once
    # The provider told the app "paid" and its notification is still to come: grabs go ahead,
    # and are credited (到账) when it arrives.
    AWAITING_SETTLEMENT = 2
    VOIDED = 3  # the payment never came within --payment-timeout: the shares are gone


class PayType(IntEnum):
    BALANCE = 0
    ALIPAY = 1
    WECHAT = 2
    UNIONPAY = 3
    SANDBOX = 4

    @property
    def wire_name(self) -> str:
        """What the protocol calls it: `balance`, `alipay`, `wechat`, `unionpay`, `sandbox`."""
        return self.name.lower()


# The pay states in which a packet's shares can be grabbed, for SQL: "pay_status IN (1, 2)".
GRABBABLE = f"({PayStatus.PAID}, {PayStatus.AWAITING_SETTLEMENT})"


class EventState(IntEnum):
    """Where an outbound event (--events-url) is."""
    PENDING = 0  # to be sent, or sent again at next_try
    DELIVERED = 1  # a POST of it was answered 2xx
    FAILED = 2  # not delivered by its deadline: kept for GET /admin/events, until replayed

    @property
    def wire_name(self) -> str:
        return self.name.lower()
