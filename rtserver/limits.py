"""The red-packet rules: what a sender may put in a packet, and send in a day, as plain functions."""
import datetime
import functools
from dataclasses import dataclass

from rtserver.errors import BadRequest, InvalidAmount, InvalidNumber
from rtserver.money import format_fen, parse_amount
from storage.schema import PacketType

PACKET_TYPES = frozenset(PacketType)
# Days and years turn at Beijing midnight: China keeps one time zone, and no summer time.
BEIJING = datetime.timezone(datetime.timedelta(hours=8))


ONE_SHARE = frozenset({PacketType.PERSONAL, PacketType.EXCLUSIVE})  # for one person: one share
WITH_PASSWORD = frozenset({PacketType.GROUP_NORMAL, PacketType.GROUP_LUCKY})  # may be 口令红包
MAX_PASSWORD = 20


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

    def view(self) -> dict:
        """`hello.limits`: what a client checks its forms against, amounts as the wire has them."""
        return {"max_shares": self.max_shares, "min_share": format_fen(self.min_share),
                "max_share": format_fen(self.max_share),
                "max_personal": format_fen(self.max_personal),
                "max_payment": format_fen(self.max_payment), "intro_max": self.max_intro}


@functools.lru_cache(maxsize=8)
def limits_of(settings) -> Limits:
    """The limits set by the flags `--max-shares`, `--min-share`, `--max-share`,
    `--max-personal` and `--max-payment`; SystemExit when they make no sense."""
    try:
        limits = Limits(max_shares=settings.max_shares,
                        min_share=parse_amount(settings.min_share),
                        max_share=parse_amount(settings.max_share),
                        max_personal=parse_amount(settings.max_personal),
                        max_payment=parse_amount(settings.max_payment))
    except InvalidAmount as exc:
        raise SystemExit(f"rtserver: a packet limit is not an amount: {exc.message}") from None
    if not (1 <= limits.max_shares and 0 < limits.min_share <= limits.max_share
            and limits.min_share <= limits.max_personal
            and limits.min_share <= limits.max_payment):
        raise SystemExit("rtserver: the packet limits need --max-shares >= 1 and "
                         "0 < --min-share <= --max-share, --max-personal and --max-payment")
    return limits


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
    if type in ONE_SHARE:
        if number != 1:
            raise InvalidNumber("a personal or exclusive packet has exactly 1 share")
    if type != PacketType.PERSONAL:
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
    if type in ONE_SHARE:
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
                      intro=intro_of(intro, limits))


def _check_range(fen: int, lo: int, hi: int, what: str) -> None:
    if not lo <= fen <= hi:
        raise InvalidAmount(f"{what} must be between {format_fen(lo)} and {format_fen(hi)}")


def intro_of(intro, limits: Limits) -> str:
    """The intro a packet will show: the sender's, trimmed, or the default."""
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


def password_of(type, password) -> str | None:
    """The phrase of a 口令红包 as stored and shown: the sender's, without surrounding spaces.

    Only group normal and lucky packets take one: a personal or exclusive packet is for one
    person already. Raises BadRequest."""
    if password is None:
        return None
    if type not in WITH_PASSWORD:
        raise BadRequest("only group normal and lucky packets take a password")
    if not isinstance(password, str) or not 1 <= len(password) <= MAX_PASSWORD \
            or not password.strip():
        raise BadRequest(f"password must be 1 to {MAX_PASSWORD} characters")
    return password.strip()


def says_password(password: str, said) -> bool:
    """Whether a grabber said a packet's phrase: the same words, spaces around them ignored."""
    return isinstance(said, str) and said.strip() == password
