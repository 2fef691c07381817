"""零钱明细: a user's wallet ledger, newest first, each row in the words a person reads."""
from rtserver.context import Context
from rtserver.money import format_fen
from storage import packets, payments, people, wallets

# The ledger's own kinds → the kind a client is told, and the row's title. A grab's title
# names the packet's sender; a `void_refund` gives back a payment that came after its packet's
# void: to the person reading, a refund like any other.
KINDS = {
    "deposit": ("deposit", "充值"),
    "withdraw": ("withdraw", "提现"),
    "pay": ("pay", "发出红包"),
    "grab": ("grab", "{sender}的红包"),
    "refund": ("refund", "红包退款"),
    "void_refund": ("refund", "红包退款"),
}


async def page(ctx: Context, user_id: int, before: int | None, limit: int) -> dict:
    """The user's ledger rows with ids below `before`, newest first; `next` the cursor of the
    next page, None at the end."""
    async with ctx.db.cursor() as cur:
        rows = await wallets.ledger_page(cur, user_id, before, limit + 1)
        rows, more = rows[:limit], len(rows) > limit
        rp_ids = await packets_of(cur, rows)
        grabbed = [rp_ids[r["id"]] for r in rows if r["kind"] == "grab" and r["id"] in rp_ids]
        senders = {rp: p["user_id"] for rp, p in (await packets.get_many(cur, grabbed)).items()}
        names = await people.names(cur, senders.values())
    items = []
    for row in rows:
        rp_id = rp_ids.get(row["id"])
        sender = names[senders[rp_id]] if row["kind"] == "grab" else None
        items.append(entry(row, rp_id, sender))
    return {"items": items, "next": rows[-1]["id"] if more else None}


def entry(row: dict, rp_id: int | None, sender: str | None) -> dict:
    """One ledger row as the client shows it: the amount unsigned, beside its direction."""
    kind, title = KINDS[row["kind"]]
    return {"id": row["id"], "kind": kind, "direction": "in" if row["amount"] > 0 else "out",
            "amount": format_fen(abs(row["amount"])), "balance": format_fen(row["balance"]),
            "time": row["add_time"], "rp_id": rp_id, "title": title.format(sender=sender)}


async def packets_of(cur, rows: list[dict]) -> dict[int, int]:
    """ledger id → the packet each row moved money for, as its (kind, ref) names it: the packet
    itself (pay, refund), one of its shares (grab), a provider's trade for it (void_refund)."""
    found = {r["id"]: int(r["ref"]) for r in rows if r["kind"] in ("pay", "refund")}
    grabs = {r["id"]: int(r["ref"]) for r in rows if r["kind"] == "grab"}
    of_share = await packets.packets_of_shares(cur, grabs.values())
    found.update({lid: of_share[share] for lid, share in grabs.items() if share in of_share})
    trades = {r["id"]: tuple(r["ref"].split(":", 1)) for r in rows if r["kind"] == "void_refund"}
    of_trade = await payments.packets_of_trades(cur, list(set(trades.values())))
    found.update({lid: of_trade[trade] for lid, trade in trades.items() if trade in of_trade})
    return found
