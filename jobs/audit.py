"""`rtserver audit`: is every fen accounted for?"""
from rtserver.config import Settings
from rtserver.money import format_fen
from storage import audit
from storage.db import Database


def conservation(f: dict[str, int]) -> tuple[int, int, int]:
    """Return (money put in, money held in wallets and packets or gone out, money held in
    packets). Money refunded to a provider, and money withdrawn, has left rtserver."""
    put_in = f["deposits"] + f["paid_by_providers"]
    in_packets = (f["paid_from_wallets"] + f["paid_by_providers"]
                  - f["credited_shares"] - f["refunded"] - f["refunded_to_providers"])
    gone_out = f["refunded_to_providers"] + f["withdrawn"]
    return put_in, f["wallets"] + in_packets + gone_out, in_packets


async def run_audit(settings: Settings, out=print) -> int:
    """Print the figures and every broken rule; return 0 when all is well, 1 otherwise."""
    db = await Database.connect(settings.mysql_url, maxsize=1)
    try:
        # One transaction reads one snapshot: money moving meanwhile cannot fake a mismatch.
        async with db.transaction() as tx:
            figures = await audit.figures(tx.cur)
            broken = await audit.broken_rules(tx.cur)
    finally:
        await db.close()
    put_in, held, in_packets = conservation(figures)
    out(f"money put in (deposits + provider payments): {format_fen(put_in)}")
    out(f"wallets: {format_fen(figures['wallets'])}  held in packets: {format_fen(in_packets)}"
        f"  refunded to providers: {format_fen(figures['refunded_to_providers'])}"
        f"  withdrawn: {format_fen(figures['withdrawn'])}")
    if put_in != held:
        broken["money put in differs from money held"] = [
            {"put_in": format_fen(put_in), "held": format_fen(held)}]
    if in_packets < 0:
        broken["packets paid out more than was paid in"] = [{"held": format_fen(in_packets)}]
    for rule, rows in broken.items():
        out(f"MISMATCH: {rule}: {rows}")
    out("audit: ok" if not broken else f"audit: {len(broken)} rule(s) broken")
    return 1 if broken else 0
