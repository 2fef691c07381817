"""The checker: what users were told (the history) against what MariaDB holds once every clock
has run out (facts.py), and the rules money and answers must keep.

Each rule yields violations `(kind, weight, example)`; the weight (fen, seconds, or a count)
picks the worst example of a kind for the report.
"""
from dataclasses import dataclass

from bench.chaos.history import History
from rtserver.money import parse_amount

ANSWER_WITHIN = 30.0  # seconds a request may wait for its answer on an open socket
UNPAID, PAID, AWAITING, VOIDED = 0, 1, 2, 3
PIN_REFUSED = ("bad_pin", "pin_locked", "pin_required")
WON = ("ok", "already")
LOST = ("closed", "timeout", "lost")  # no answer: it may or may not have done its work


@dataclass
class Violation:
    kind: str
    weight: float
    example: dict


def check(history: History, facts: dict, audit: tuple[int, str], quiet_from: float,
          final_balances_at: float) -> list[Violation]:
    grabs = [c for c in history.of("packet.grab") if c.outcome is not None]
    return [*acknowledged_grabs(grabs, facts), *packets_ended(facts), *money(history, facts),
            *pin_refusals(history, facts),
            *wallet_events(history, facts, quiet_from, final_balances_at),
            *unanswered(history), *answers_true(grabs, facts), *audit_rule(audit)]


def _share_of(packet: dict, uid: int) -> dict | None:
    return next((s for s in packet["shares"] if s["user_id"] == uid), None)


def acknowledged_grabs(grabs, facts) -> list[Violation]:
    """Every `ok`/`already` with money is that user's share, credited with one ledger row."""
    found, seen = [], set()
    for call in grabs:
        if call.outcome not in WON or "money" not in (call.reply or {}):
            continue
        rp_id, uid, money = call.args["rp_id"], call.user, parse_amount(call.reply["money"])
        if (rp_id, uid, money) in seen:
            continue
        seen.add((rp_id, uid, money))
        packet = facts["packets"][rp_id]
        if packet["pay_status"] == VOIDED:
            continue  # the payment never came: no share of it is credited (the audit checks)
        share = _share_of(packet, uid)
        example = {"rp_id": rp_id, "user": uid, "answered": call.reply["money"],
                   "outcome": call.outcome, "at": round(call.received, 3)}
        ledger = facts["grab_ledger"].get(str(share["id"]), []) if share else []
        if share is None:
            reason = "no share of the packet is the user's"
        elif share["money"] != money:
            reason = f"the user's share holds {share['money']} fen"
        elif not share["is_into_account"]:
            reason = "the share was never credited"
        elif len(ledger) != 1 or ledger[0]["amount"] != money or ledger[0]["user_id"] != uid:
            reason = f"{len(ledger)} grab ledger rows"
        else:
            continue
        found.append(Violation("acknowledged_grab_not_credited_once", money,
                               dict(example, reason=reason)))
    return found


def packets_ended(facts) -> list[Violation]:
    """Every packet paid ends finished, refunded or voided, its shares adding up."""
    found = []
    for rp_id, p in facts["packets"].items():
        shares, example = p["shares"], {"rp_id": rp_id, "type": p["type"],
                                        "number": p["number"], "pay_status": p["pay_status"]}
        grabbed = [s for s in shares if s["user_id"] is not None]
        for s in shares:
            if s["user_id"] is not None and s["is_refunded"]:
                found.append(Violation("share_grabbed_and_refunded", s["money"],
                                       dict(example, share=s["id"], user=s["user_id"])))
        users = [s["user_id"] for s in grabbed]
        if len(users) != len(set(users)):
            found.append(Violation("user_holds_two_shares", 1, example))
        if p["pay_status"] == AWAITING:
            found.append(Violation("packet_not_ended", p["total_money"],
                                   dict(example, reason="still awaiting its payment")))
        if p["pay_status"] != PAID:
            continue  # unpaid (never paid: no money in it) or voided
        drained = len(grabbed) == p["number"]
        if drained and not p["finish_time"]:
            found.append(Violation("drained_packet_not_finished", p["total_money"], example))
        elif not drained and not p["is_cli_handle"]:
            found.append(Violation("packet_not_ended", p["total_money"],
                                   dict(example, reason="paid, shares free, never refunded")))
        refunded = sum(s["money"] for s in shares if s["is_refunded"])
        if sum(s["money"] for s in grabbed) + refunded != p["total_money"]:
            found.append(Violation("grabbed_plus_refunded_is_not_total", p["total_money"],
                                   dict(example, grabbed=sum(s["money"] for s in grabbed),
                                        refunded=refunded, total=p["total_money"])))
        uncredited = [s for s in grabbed if not s["is_into_account"]]
        if uncredited:
            found.append(Violation("grabbed_share_never_credited", len(uncredited),
                                   dict(example, shares=[s["id"] for s in uncredited][:5])))
    return found


def money(history: History, facts) -> list[Violation]:
    """Wallets add up to their ledgers, and money in = wallets + money held in packets, where
    money in is exactly the deposits and payments the workload made, less its withdrawals."""
    found = []
    for uid, balance in facts["wallets"].items():
        if balance != facts["ledger_sums"].get(uid, 0):
            found.append(Violation("wallet_differs_from_ledger", abs(balance - facts[
                "ledger_sums"].get(uid, 0)), {"user": uid, "balance": balance}))
    found += movements(history.of("deposit"), facts["deposits"], "deposit")
    found += movements(history.of("withdraw"), facts["withdrawals"], "withdrawal")
    notes = [c for c in history.of("notify") if c.args["status"] == "SUCCESS"]
    paid = {(c.args["trade_no"], parse_amount(c.args["amount"])) for c in notes}
    accepted = {p["trade_no"] for p in facts["payments"]}
    for p in facts["payments"]:
        if (p["trade_no"], p["amount"]) not in paid:
            found.append(Violation("payment_not_made", p["amount"], p))
    for c in notes:
        if c.outcome == "204" and c.args["trade_no"] not in accepted:
            found.append(Violation("acknowledged_payment_missing", parse_amount(
                c.args["amount"]), dict(c.args)))
    put_in = sum(d["amount"] for d in facts["deposits"]) + sum(
        p["amount"] for p in facts["payments"]) - sum(w["amount"] for w in facts["withdrawals"])
    held = sum(p["total_money"] - p["return_money"] - sum(
        s["money"] for s in p["shares"] if s["is_into_account"])
        for p in facts["packets"].values() if p["pay_status"] == PAID)
    wallets = sum(facts["wallets"].values())
    if put_in != wallets + held:
        found.append(Violation("money_not_conserved", abs(put_in - wallets - held),
                               {"put_in": put_in, "wallets": wallets, "held": held}))
    return found


def movements(calls, booked_rows, name: str) -> list[Violation]:
    """Every deposit (or withdrawal) in the ledger was asked for, with its user and amount,
    and every one answered 200 is there; one answered only 409 (not enough money) is not."""
    found, sent = [], {}
    for call in calls:
        sent.setdefault(call.args["ref"], []).append(call)
    booked = {row["ref"]: row for row in booked_rows}
    for ref, row in booked.items():
        asked = sent.get(ref, [])
        if not asked or parse_amount(asked[0].args["amount"]) != row["amount"] or \
                asked[0].user != row["user_id"]:
            found.append(Violation(f"{name}_not_made", row["amount"], dict(row, ref=ref)))
        elif all(c.outcome == "409" for c in asked):
            found.append(Violation(f"{name}_refused_but_made", row["amount"], dict(row, ref=ref)))
    for ref, asked in sent.items():
        if any(c.outcome == "200" for c in asked) and ref not in booked:
            found.append(Violation(f"acknowledged_{name}_missing", parse_amount(
                asked[0].args["amount"]), {"ref": ref, "user": asked[0].user}))
    return found


def pin_refusals(history: History, facts) -> list[Violation]:
    """A payment refused for its 支付密码 (`bad_pin`, `pin_locked`, `pin_required`) moved
    nothing: a packet whose every payment was refused so was never paid from the balance."""
    found, pays = [], {}
    for call in history.of("packet.pay"):
        pays.setdefault(call.args["rp_id"], []).append(call)
    for rp_id, calls in pays.items():
        packet = facts["packets"][rp_id]
        if all(c.outcome in PIN_REFUSED for c in calls) and packet["pay_status"] != UNPAID:
            found.append(Violation("paid_though_its_pin_was_refused", packet["total_money"],
                                   {"rp_id": rp_id, "answers": [c.outcome for c in calls]}))
    return found


def wallet_events(history: History, facts, quiet_from: float, at: float) -> list[Violation]:
    """A socket that was open through the quiet end of the run, and not told of missed events
    (`resync`) during it, shows its user's final balance: the newest it heard (`hello`, `wallet`
    events, the `wallet.get` it sent after each `resync`) by `ledger_id`, as a client keeps it:
    events from different nodes and jobs may arrive out of order."""
    found = []
    for sock in history.sockets:
        if sock.opened > quiet_from or (sock.closed is not None and sock.closed < at):
            continue
        if any(t >= quiet_from for t in sock.resyncs) or not sock.balances:
            continue
        heard_at, shown, _ = max(sock.balances, key=lambda b: b[2])
        heard, final = parse_amount(shown), facts["wallets"].get(sock.user, 0)
        if heard != final:
            found.append(Violation("newest_wallet_event_is_not_the_balance", abs(heard - final),
                                   {"user": sock.user, "node": sock.node, "conn": sock.conn,
                                    "heard": shown, "balance": final,
                                    "heard_at": round(heard_at, 3)}))
    return found


def unanswered(history: History) -> list[Violation]:
    """No request waits more than 30 s for its answer while its socket stays open."""
    found = []
    for call in history.calls:
        waited = call.latency
        if waited is None or waited <= ANSWER_WITHIN:
            continue
        if (call.outcome == "closed" and call.conn >= 0) or call.outcome == "lost":
            continue  # the socket closed: the client knows to ask again (timed-out ones count)
        found.append(Violation("unanswered_for_30s", waited, {
            "op": call.op, "user": call.user, "node": call.node, "outcome": call.outcome,
            "sent": round(call.sent, 3), "waited": round(waited, 3)}))
    return found


def answers_true(grabs, facts) -> list[Violation]:
    """`too_slow`, `expired` and `unavailable` said only of what turned out to be so."""
    found = []
    by_pair: dict[tuple[int, int], list] = {}
    for call in grabs:
        by_pair.setdefault((call.args["rp_id"], call.user), []).append(call)
    for call in grabs:
        rp_id = call.args["rp_id"]
        packet = facts["packets"].get(rp_id)
        if packet is None or packet["pay_status"] != PAID:
            continue
        example = {"rp_id": rp_id, "user": call.user, "node": call.node,
                   "sent": round(call.sent, 3), "outcome": call.outcome}
        if call.outcome == "too_slow" and any(s["is_refunded"] for s in packet["shares"]):
            refunded = sum(s["money"] for s in packet["shares"] if s["is_refunded"])
            found.append(Violation("too_slow_but_a_share_was_refunded", refunded,
                                   dict(example, refunded=refunded)))
        if call.outcome == "expired" and all(s["user_id"] for s in packet["shares"]):
            found.append(Violation("expired_but_every_share_was_grabbed", packet["total_money"],
                                   example))
        if call.outcome == "unavailable":
            share = _share_of(packet, call.user)
            others = by_pair[(rp_id, call.user)]
            # Credited, yet no request of this user was told `ok` and none went unanswered:
            # the share was booked by a request that said it changed nothing.
            if share and share["is_into_account"] and not any(
                    c.outcome == "ok" or c.outcome in LOST for c in others):
                found.append(Violation("unavailable_but_the_grab_was_booked", share["money"],
                                       dict(example, money=share["money"], answers=[
                                           (round(c.sent, 3), c.outcome) for c in others])))
    return found


def audit_rule(audit: tuple[int, str]) -> list[Violation]:
    code, output = audit
    if code == 0:
        return []
    return [Violation("audit_failed", 1, {"exit": code, "output": output[-2000:]})]
