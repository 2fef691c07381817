"""What rtserver and a provider tell each other, in rtserver's words, whichever the provider."""
import datetime
from dataclasses import dataclass
from typing import Literal

from rtserver.errors import RtError

CHINA = datetime.timezone(datetime.timedelta(hours=8))  # every provider's clock is Beijing's

TradeState = Literal["paid", "unpaid", "closed"]  # closed: failed, closed, revoked — never paid
RefundState = Literal["pending", "succeeded", "failed"]  # failed: the provider gave up on it


class BadSignature(RtError):
    code, default_message, http_status = "unauthorized", "signature does not verify", 401


@dataclass(frozen=True)
class Notification:
    """What a verified payment notification says: which order, which trade, how much, and
    whether the money arrived ("paid"), never will ("closed"), or not yet ("unpaid")."""

    out_trade_no: str
    trade_no: str
    amount: int
    state: TradeState

    @property
    def success(self) -> bool:
        return self.state == "paid"


@dataclass(frozen=True)
class RefundNotification:
    """What a verified refund notification says: which refund, and how it ended."""

    out_refund_no: str
    state: RefundState
    refund_id: str = ""


@dataclass(frozen=True)
class Order:
    """A payment order as we placed it: every provider call about it starts from this."""

    out_trade_no: str
    amount: int  # fen
    subject: str
    created: int  # when we placed it (UnionPay names an order by orderId and txnTime)
    expires: int  # after this the provider must refuse to take the money
    trade_no: str = ""  # the provider's, once it told us

    @classmethod
    def of_row(cls, row: dict, payment_timeout: int, subject: str = "",
               trade_no: str = "") -> "Order":
        """The order of a `payment_orders` row: it expires with its packet's payment time."""
        return cls(out_trade_no=row["out_trade_no"], amount=row["amount"], subject=subject,
                   created=row["add_time"], expires=row["add_time"] + payment_timeout,
                   trade_no=trade_no)


@dataclass(frozen=True)
class Trade:
    """What a query (or a close) found at the provider."""

    state: TradeState
    trade_no: str = ""
    amount: int = 0  # fen, when paid


@dataclass(frozen=True)
class Refund:
    """A refund we ask a provider for; `out_refund_no` never changes across retries."""

    out_refund_no: str  # letters and digits, 8 to 32 of them: every provider takes it
    order: Order  # with the trade_no of the payment refunded
    amount: int  # fen
    created: int  # when we first asked (UnionPay names a refund by orderId and txnTime)


@dataclass(frozen=True)
class RefundAnswer:
    """The provider's answer to a refund or its query."""

    state: RefundState
    refund_id: str = ""
    detail: str = ""  # the provider's own words (its status or message), never a key or a body


def beijing(epoch: int, pattern: str) -> str:
    return datetime.datetime.fromtimestamp(epoch, CHINA).strftime(pattern)
