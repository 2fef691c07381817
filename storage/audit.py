"""Read-only queries of the audit: the money figures, and every row that breaks a rule."""
from storage.db import to_fen
from storage.schema import PayStatus, PayType


async def figures(cur) -> dict[str, int]:
    """The sums, in fen, that conservation of money is checked on."""
    async def total(sql: str) -> int:
        await cur.execute(sql)
        return to_fen((await cur.fetchone())["s"] or 0)

    return {
        "wallets": await total("SELECT SUM(balance) AS s FROM wallets"),
        "deposits": await total("SELECT SUM(amount) AS s FROM wallet_ledger WHERE kind = 'deposit'"),
        # Withdrawals (提现) have left rtserver too, to wherever the chat app paid them out.
        "withdrawn": -await total(
            "SELECT SUM(amount) AS s FROM wallet_ledger WHERE kind = 'withdraw'"),
        "paid_from_wallets": -await total(
            "SELECT SUM(amount) AS s FROM wallet_ledger WHERE kind = 'pay'"),
        "paid_by_providers": await total(
            "SELECT SUM(n.amount) AS s FROM payment_notifications n"
            " JOIN payment_orders o ON o.out_trade_no = n.out_trade_no"
            " WHERE n.status = 'accepted'"),
        "credited_shares": await total(
            "SELECT SUM(money) AS s FROM red_packet_log WHERE is_into_account = 1"),
        "refunded": await total(
            "SELECT SUM(amount) AS s FROM wallet_ledger WHERE kind IN ('refund', 'void_refund')"),
        # Refunds sent back to the providers: that money has left rtserver (a failed one was
        # credited to the balance instead, and is among the ledger's refunds).
        "refunded_to_providers": await total(
            "SELECT SUM(amount) AS s FROM provider_refunds WHERE state <> 'failed'"),
    }


# Each query lists the rows that break one rule; an empty result means the rule holds.
# A ledger row's `ref` is text: it is matched against a number's text (CAST … AS CHAR), since
# text compared with a number cannot use the (kind, ref) key and every pair would be compared.
# The cast's text has the connection's collation; `ref`'s binary one (migration 0007) wins the
# comparison without a "mix of collations", so the key is still used (tests/test_audit.py).
RULES = {
    "wallet balance differs from the sum of its ledger":
        "SELECT w.user_id, w.balance, COALESCE(SUM(l.amount), 0) AS ledger FROM wallets w"
        " LEFT JOIN wallet_ledger l ON l.user_id = w.user_id GROUP BY w.user_id, w.balance"
        " HAVING w.balance <> ledger",
    "ledger row whose balance is not the running total of its user's movements":
        "SELECT id, user_id, balance, running FROM (SELECT id, user_id, balance,"
        " SUM(amount) OVER (PARTITION BY user_id ORDER BY id) AS running FROM wallet_ledger) l"
        " WHERE balance <> running",
    "ledger rows for a user without a wallet":
        "SELECT l.user_id, COUNT(*) AS n FROM wallet_ledger l LEFT JOIN wallets w"
        " ON w.user_id = l.user_id WHERE w.user_id IS NULL GROUP BY l.user_id",
    "withdrawal that did not take money out":
        "SELECT id, user_id, amount FROM wallet_ledger WHERE kind = 'withdraw' AND amount >= 0",
    "day's sending differs from the packets counted on it":
        "SELECT d.user_id, d.day, d.packets, d.amount, COUNT(p.id) AS counted,"
        " COALESCE(SUM(p.total_money), 0) AS counted_amount FROM daily_sends d"
        " LEFT JOIN red_packet p ON p.user_id = d.user_id AND p.send_day = d.day"
        " GROUP BY d.user_id, d.day, d.packets, d.amount"
        " HAVING d.packets <> counted OR d.amount <> counted_amount",
    "packet shares do not add up to its total or number":
        "SELECT p.id, p.total_money, p.number, COALESCE(SUM(s.money), 0) AS shares,"
        " COUNT(s.id) AS n FROM red_packet p LEFT JOIN red_packet_log s ON s.rp_id = p.id"
        " GROUP BY p.id, p.total_money, p.number"
        " HAVING shares <> p.total_money OR n <> p.number",
    "share both grabbed and refunded, or credited without a grabber":
        "SELECT id, rp_id FROM red_packet_log"
        " WHERE (user_id IS NOT NULL AND is_refunded = 1)"
        " OR (is_into_account = 1 AND user_id IS NULL)",
    "credited share without exactly its ledger row":
        "SELECT s.id, s.money, l.amount FROM red_packet_log s LEFT JOIN wallet_ledger l"
        " ON l.kind = 'grab' AND l.ref = CAST(s.id AS CHAR)"
        " WHERE s.is_into_account = 1 AND (l.id IS NULL OR l.amount <> s.money"
        " OR l.user_id <> s.user_id)",
    "grab ledger row for a share not credited":
        "SELECT l.id, l.ref FROM wallet_ledger l LEFT JOIN red_packet_log s ON s.id = l.ref"
        " WHERE l.kind = 'grab' AND (s.id IS NULL OR s.is_into_account = 0)",
    "balance-paid packet without exactly its pay row":
        "SELECT p.id FROM red_packet p LEFT JOIN wallet_ledger l"
        " ON l.kind = 'pay' AND l.ref = CAST(p.id AS CHAR)"
        f" WHERE p.pay_type = {PayType.BALANCE}"
        f" AND ((p.pay_status = {PayStatus.PAID} AND (l.id IS NULL"
        " OR l.amount <> -p.total_money OR l.user_id <> p.user_id))"
        f" OR (p.pay_status <> {PayStatus.PAID} AND l.id IS NOT NULL))",
    "provider-paid packet and its accepted payments disagree":
        "SELECT p.id, p.pay_status, COALESCE(a.n, 0) AS accepted FROM red_packet p"
        " JOIN payment_orders o ON o.rp_id = p.id LEFT JOIN (SELECT out_trade_no, COUNT(*) AS n"
        " FROM payment_notifications WHERE status = 'accepted' GROUP BY out_trade_no) a"
        " ON a.out_trade_no = o.out_trade_no"
        f" WHERE (p.pay_status = {PayStatus.PAID} AND COALESCE(a.n, 0) = 0)"
        f" OR (p.pay_status IN ({PayStatus.UNPAID}, {PayStatus.AWAITING_SETTLEMENT})"
        " AND COALESCE(a.n, 0) > 0)",
    "share credited on a packet that never got its money":
        "SELECT s.id, s.rp_id FROM red_packet_log s JOIN red_packet p ON p.id = s.rp_id"
        f" WHERE s.is_into_account = 1 AND p.pay_status <> {PayStatus.PAID}",
    "refund booked differs from the packet's return_money":
        "SELECT p.id, p.return_money, l.amount AS to_balance, r.amount AS to_provider"
        " FROM red_packet p LEFT JOIN wallet_ledger l"
        " ON l.kind = 'refund' AND l.ref = CAST(p.id AS CHAR)"
        " LEFT JOIN provider_refunds r ON r.kind = 'refund' AND r.ref = CAST(p.id AS CHAR)"
        " AND r.state <> 'failed'"
        " WHERE p.return_money <> COALESCE(l.amount, 0) + COALESCE(r.amount, 0)"
        " OR (l.id IS NOT NULL AND r.out_refund_no IS NOT NULL)"
        " OR l.user_id <> p.user_id OR r.user_id <> p.user_id",
    "refund the provider gave up on, not credited to the balance":
        "SELECT r.out_refund_no, r.amount, l.amount AS credited FROM provider_refunds r"
        " LEFT JOIN wallet_ledger l ON l.kind = r.kind AND l.ref = r.ref"
        " WHERE r.state = 'failed' AND (l.id IS NULL OR l.amount <> r.amount"
        " OR l.user_id <> r.user_id)",
    "refund sent to a provider for a payment that did not come in, or that paid its packet":
        "SELECT r.out_refund_no, r.ref, r.amount FROM provider_refunds r"
        " LEFT JOIN payment_notifications n ON n.status = 'accepted'"
        " AND CONCAT(n.provider, ':', n.trade_no) = r.ref"
        " LEFT JOIN red_packet p ON p.id = r.rp_id"
        " WHERE r.kind = 'void_refund' AND (n.id IS NULL OR r.amount <> n.amount"
        " OR r.user_id <> p.user_id OR r.provider <> n.provider"
        f" OR (p.pay_status = {PayStatus.PAID} AND p.trade_no = n.trade_no))",
    "money returned for a provider payment that did not come in, or that paid its packet":
        "SELECT l.id, l.ref, l.amount FROM wallet_ledger l LEFT JOIN payment_notifications n"
        " ON n.status = 'accepted' AND CONCAT(n.provider, ':', n.trade_no) = l.ref"
        " LEFT JOIN payment_orders o ON o.out_trade_no = n.out_trade_no"
        " LEFT JOIN red_packet p ON p.id = o.rp_id"
        " WHERE l.kind = 'void_refund' AND (n.id IS NULL OR l.amount <> n.amount"
        " OR l.user_id <> p.user_id"
        f" OR (p.pay_status = {PayStatus.PAID} AND p.trade_no = n.trade_no))",
    "packet paid out more than it holds":
        "SELECT p.id, p.total_money, COALESCE(SUM(s.money), 0) AS credited, p.return_money"
        " FROM red_packet p LEFT JOIN red_packet_log s ON s.rp_id = p.id"
        " AND s.is_into_account = 1 GROUP BY p.id, p.total_money, p.return_money"
        " HAVING credited + p.return_money > p.total_money",
    "refund differs from the shares refunded":
        "SELECT p.id, p.return_money, COALESCE(SUM(s.money), 0) AS refunded FROM red_packet p"
        " LEFT JOIN red_packet_log s ON s.rp_id = p.id AND s.is_refunded = 1"
        " GROUP BY p.id, p.return_money HAVING p.return_money <> refunded",
}


async def broken_rules(cur) -> dict[str, list[dict]]:
    found = {}
    for rule, sql in RULES.items():
        await cur.execute(sql + " LIMIT 20")
        rows = list(await cur.fetchall())
        if rows:
            found[rule] = rows
    return found
