"""What MariaDB holds at the end of a run, read once for the checker (amounts in fen)."""
from storage.db import to_fen
from storage.schema import EventState


def read(conn) -> dict:
    with conn.cursor() as cur:
        def rows(sql: str) -> list[dict]:
            cur.execute(sql)
            return list(cur.fetchall())

        packets = {p["id"]: p for p in rows(
            "SELECT id, type, number, total_money, pay_status, pay_type, pay_time, finish_time,"
            " expend_time, is_cli_handle, return_money, expire_time FROM red_packet")}
        shares = rows("SELECT id, rp_id, seq, user_id, money, is_into_account, is_refunded,"
                      " update_time FROM red_packet_log")
        grab_rows = rows("SELECT ref, user_id, amount, add_time FROM wallet_ledger"
                         " WHERE kind = 'grab'")
        deposits = rows("SELECT ref, user_id, amount FROM wallet_ledger WHERE kind = 'deposit'")
        withdrawals = rows("SELECT ref, user_id, amount FROM wallet_ledger"
                           " WHERE kind = 'withdraw'")
        wallets = {w["user_id"]: w["balance"] for w in rows("SELECT user_id, balance FROM wallets")}
        ledger = {r["user_id"]: r["s"] for r in rows(
            "SELECT user_id, SUM(amount) AS s FROM wallet_ledger GROUP BY user_id")}
        payments = rows("SELECT n.trade_no, n.out_trade_no, n.amount, o.rp_id"
                        " FROM payment_notifications n JOIN payment_orders o"
                        " ON o.out_trade_no = n.out_trade_no WHERE n.status = 'accepted'")
        events = rows("SELECT id, type, rp_id, state, tries, last_error FROM outbound_events")
    for packet in packets.values():
        packet["total_money"] = to_fen(packet["total_money"])
        packet["return_money"] = to_fen(packet["return_money"])
        packet["shares"] = []
    for share in shares:
        share["money"] = to_fen(share["money"])
        packets[share["rp_id"]]["shares"].append(share)
    grabs: dict[str, list[dict]] = {}
    for row in grab_rows:
        grabs.setdefault(row["ref"], []).append(dict(row, amount=to_fen(row["amount"])))
    return {
        "packets": packets,
        "grab_ledger": grabs,  # share id (text) -> its grab ledger rows
        "deposits": [dict(d, amount=to_fen(d["amount"])) for d in deposits],
        # amounts as taken out: positive fen
        "withdrawals": [dict(w, amount=-to_fen(w["amount"])) for w in withdrawals],
        "wallets": {uid: to_fen(b) for uid, b in wallets.items()},
        "ledger_sums": {uid: to_fen(s) for uid, s in ledger.items()},
        "payments": [dict(p, amount=to_fen(p["amount"])) for p in payments],
        # every outbound event kept (none is deleted within a run: a week must pass)
        "outbound": [dict(e, id=str(e["id"]), state=EventState(e["state"]).wire_name)
                     for e in events],
    }
