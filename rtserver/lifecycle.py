"""A packet's life: its pay type's wire name, and the status a client sees. Pure rules."""
from storage.schema import PayStatus, PayType

PAY_TYPES = {pay_type.wire_name: pay_type for pay_type in PayType}


def status(packet: dict, now: int) -> str:
    """unpaid, active (grabbable), finished (all taken), expired (time passed), or voided."""
    if packet["pay_status"] == PayStatus.UNPAID:
        return "unpaid"
    if packet["pay_status"] == PayStatus.VOIDED:
        return "voided"
    if packet["finish_time"]:
        return "finished"
    if packet["is_cli_handle"] or now >= packet["expire_time"]:
        return "expired"
    return "active"

