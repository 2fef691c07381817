"""A packet's life: pay types, pay states, and the status a client sees. Pure rules."""

PAY_TYPES = {"balance": 0, "alipay": 1, "wechat": 2, "unionpay": 3, "sandbox": 4}
UNPAID, PAID, AWAITING_SETTLEMENT, VOIDED = 0, 1, 2, 3


def status(packet: dict, now: int) -> str:
    """unpaid, active (grabbable), finished (all taken), expired (time passed), or voided."""
    if packet["pay_status"] == UNPAID:
        return "unpaid"
    if packet["pay_status"] == VOIDED:
        return "voided"
    if packet["finish_time"]:
        return "finished"
    if packet["is_cli_handle"] or now >= packet["expire_time"]:
        return "expired"
    return "active"

