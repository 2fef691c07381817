"""The red-packet rules: what a sender may put in a packet, and send in a day, as plain functions."""
import datetime
from dataclasses import dataclass

from rtserver.errors import BadRequest, InvalidAmount, InvalidNumber
from rtserver.money import format_fen
from storage.schema import PacketType

PACKET_TYPES = frozenset(PacketType)
# Days and years turn at Beijing midnight: China keeps one time zone, and no summer time.
BEIJING = datetime.timezone(datetime.timedelta(hours=8))


@dataclass(frozen=True)
class Limits:
    """Hold the configurable limits; amounts in fen."""

    max_shares: int = 100
    min_share: int = 1
    max_share: int = 20000
    max_personal: int = 20000
    max_payment: int = 2000000
    max_intro: int = 25
    default_intro: str = "恭喜发财，大吉大利"


@dataclass(frozen=True)
class PacketPlan:
    """Describe a validated packet: `single` is the per-share amount (0 for lucky packets)."""

    type: int
    number: int
    total: int
    single: int
    intro: str


def _is_int(value) -> bool:
    # bool is an int subclass, but True is not a count of shares.
    return isinstance(value, int) and not isinstance(value, bool)


def plan_packet(type, number, amount, intro, group_size, limits: Limits = Limits()) -> PacketPlan:
    """Validate a packet request and work out its total, share and intro.

    `amount` is already in fen: the amount of a personal packet, each share of a group-normal
    packet, the total of a lucky packet. `group_size` is the group's member count (None for a
    personal packet). Raises BadRequest, InvalidNumber or InvalidAmount.
    """
    if not _is_int(type) or type not in PACKET_TYPES:
        raise BadRequest("type must be 1 (personal), 2 (group normal) or 3 (group lucky)")

    if not _is_int(number):
        raise InvalidNumber("number must be an integer")
    if type == PacketType.PERSONAL:
        if number != 1:
            raise InvalidNumber("a personal packet has exactly 1 share")
    else:
        if group_size is None:
            raise ValueError("group_size is required for a group packet")
        if not 1 <= number <= limits.max_shares:
            raise InvalidNumber(f"number must be between 1 and {limits.max_shares}")
        if number > group_size:
            raise InvalidNumber(f"number must not exceed the group's {group_size} members")

    if not _is_int(amount):
        raise InvalidAmount("amount must be a whole number of fen")
    if amount <= 0:
        raise InvalidAmount("amount must be greater than 0")
    if type == PacketType.PERSONAL:
        _check_range(amount, limits.min_share, limits.max_personal, "amount")
        total, single = amount, amount
    elif type == PacketType.GROUP_NORMAL:
        _check_range(amount, limits.min_share, limits.max_share, "each share")
        total, single = number * amount, amount
    else:
        total, single = amount, 0
        if not number * limits.min_share <= total <= number * limits.max_share:
            raise InvalidAmount(
                f"a lucky packet of {number} shares must total between "
                f"{format_fen(number * limits.min_share)} and {format_fen(number * limits.max_share)}")
    if total > limits.max_payment:
        raise InvalidAmount(f"a packet may hold at most {format_fen(limits.max_payment)}")

    return PacketPlan(type=type, number=number, total=total, single=single,
                      intro=_check_intro(intro, limits))


def _check_range(fen: int, lo: int, hi: int, what: str) -> None:
    if not lo <= fen <= hi:
        raise InvalidAmount(f"{what} must be between {format_fen(lo)} and {format_fen(hi)}")


def _check_intro(intro, limits: Limits) -> str:
    if intro is None:
        return limits.default_intro
    if not isinstance(intro, str):
        raise BadRequest("intro must be a string")
    intro = intro.strip()
    if not intro:
        return limits.default_intro
    # len counts characters, so 25 Chinese characters are as welcome as 25 Latin ones.
    if len(intro) > limits.max_intro:
        raise BadRequest(f"intro must be at most {limits.max_intro} characters")
    return intro


@dataclass(frozen=True)
class DailyLimit:
    """What one user may send in packets on one Beijing day: `packets` and `fen` (0: no limit)."""

    packets: int = 0
    fen: int = 0

    def allows(self, packets: int, fen: int) -> bool:
        """Whether a day's totals, the new packet among them, are within the limit."""
        return (not self.packets or packets <= self.packets) and (not self.fen or fen <= self.fen)

    def refusal(self, packets: int, fen: int) -> str:
        """Why a day's totals (the refused packet among them) are too much."""
        if self.packets and packets > self.packets:
            return f"at most {self.packets} packets a day may be sent"
        return (f"at most {format_fen(self.fen)} a day may be sent in packets "
                f"(with this one: {format_fen(fen)})")


def beijing_day(now: int) -> datetime.date:
    """The Beijing day of a Unix time: the day a daily limit counts it on."""
    return datetime.datetime.fromtimestamp(now, BEIJING).date()
