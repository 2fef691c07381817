"""The outbound events' rules: what the receiver kept (receiver.py) against what MariaDB holds
once every clock has run out and delivery has drained.

Every change the database has was told at least once, under one id, and nothing it does not
have was told: the changes are read from the packets and their shares, never from
`outbound_events` (that table only says whether its rows were delivered).
"""
import json
from collections import Counter

from bench.chaos.checker import VOIDED, Violation
from rtserver.money import parse_amount
from storage.schema import PayType

# What each event type says changed (`key_of`), as the database holds it (`changes`).
FIELDS = {"packet.sent": ("rp_id",), "packet.grabbed": ("rp_id", "grabber", "fen"),
          "packet.finished": ("rp_id", "grabbed_count", "expend_time"),
          "packet.refunded": ("rp_id", "return_fen"), "packet.voided": ("rp_id", "grabbed_count"),
          "packet.settled": ("rp_id", "grabber", "fen")}


def check(deliveries: list[tuple[str, bytes]], forged: int, facts: dict,
          grabs) -> list[Violation]:
    """`deliveries`: (id, body) of every POST the receiver kept; `forged`: how many it refused
    for their signature or id; `grabs`: the history's `packet.grab` calls."""
    bodies: dict[str, set[bytes]] = {}
    for event_id, body in deliveries:
        bodies.setdefault(event_id, set()).add(body)
    found = [Violation("event_signature_refused", forged, {"posts": forged})] if forged else []
    found += [Violation("event_redelivered_changed", len(kept), {"id": event_id, "bodies": [
        b.decode(errors="replace")[:300] for b in kept]})
        for event_id, kept in bodies.items() if len(kept) > 1]
    received = {event_id: json.loads(min(kept)) for event_id, kept in bodies.items()}
    must, may = changes(facts, into_account(grabs))
    told: dict[str, Counter] = {}
    for event in received.values():
        if event["type"] not in FIELDS:
            found.append(Violation("event_of_no_known_type", 1, event))
            continue
        told.setdefault(event["type"], Counter())[key_of(event)] += 1
    for kind, fields in FIELDS.items():
        heard = told.get(kind, Counter())
        for key in must[kind] - set(heard):
            found.append(Violation(f"{kind}_not_received", 1, dict(zip(fields, key))))
        for key in set(heard) - must[kind] - may.get(kind, set()):
            found.append(Violation(f"{kind}_received_without_its_change", 1,
                                   dict(zip(fields, key))))
        for key, times in heard.items():
            if times > 1:
                found.append(Violation(f"{kind}_received_under_two_ids", times,
                                       dict(zip(fields, key), ids=times)))
    return found + rows(facts["outbound"], received)


def key_of(event: dict) -> tuple:
    """What an event says changed, in the terms `changes` reads from the database."""
    data, kind = event["data"], event["type"]
    if kind in ("packet.grabbed", "packet.settled"):
        return data["rp_id"], data["grabber"]["id"], parse_amount(data["money"])
    if kind == "packet.finished":
        return data["rp_id"], data["grabbed_count"], data["expend_time"]
    if kind == "packet.refunded":
        return data["rp_id"], parse_amount(data["return_money"])
    if kind == "packet.voided":
        return data["rp_id"], data["grabbed_count"]
    return (data["rp_id"],)


def into_account(grabs) -> dict[tuple[int, int], bool]:
    """(rp_id, user) -> whether the grab answered `ok` credited the share at once."""
    return {(c.args["rp_id"], c.user): bool(c.reply["into_account"]) for c in grabs
            if c.outcome == "ok" and "into_account" in (c.reply or {})}


def changes(facts: dict, credited_at_grab: dict) -> tuple[dict, dict]:
    """The changes the database holds, by event type: those that must have been told, and
    those that may have been (a credit whose moment the database cannot place)."""
    must = {kind: set() for kind in FIELDS}
    may = {"packet.settled": set()}
    for rp_id, p in facts["packets"].items():
        grabbed = [s for s in p["shares"] if s["user_id"] is not None]
        if p["pay_time"]:  # it was put in its room: paid, or awaiting a provider's money
            must["packet.sent"].add((rp_id,))
        if p["finish_time"]:
            must["packet.finished"].add((rp_id, p["number"], p["expend_time"]))
        if p["return_money"]:
            must["packet.refunded"].add((rp_id, p["return_money"]))
        if p["pay_status"] == VOIDED:
            must["packet.voided"].add((rp_id, len(grabbed)))
        for s in grabbed:
            key = (rp_id, s["user_id"], s["money"])
            must["packet.grabbed"].add(key)
            if s["is_into_account"] and p["pay_type"] != PayType.BALANCE:
                settled = settled_later(s, facts, credited_at_grab.get((rp_id, s["user_id"])))
                if settled is None:
                    may["packet.settled"].add(key)
                elif settled:
                    must["packet.settled"].add(key)
    return must, may


def settled_later(share: dict, facts: dict, at_grab: bool | None) -> bool | None:
    """Whether a credited share was credited by settlement, after its grab: its ledger row is
    of a later second than the grab, or its `ok` said it was not credited yet. None when
    neither tells (credited within the grab's second, its answer not heard)."""
    ledger = facts["grab_ledger"].get(str(share["id"]), [])
    if ledger and ledger[0]["add_time"] > share["update_time"]:
        return True
    return None if at_grab is None else not at_grab


def rows(outbound: list[dict], received: dict) -> list[Violation]:
    """No event failed or is still pending once delivery drained, and every one marked
    delivered was kept by the receiver."""
    found = []
    for row in outbound:
        example = {k: row[k] for k in ("id", "type", "rp_id", "tries", "last_error")}
        if row["state"] != "delivered":
            found.append(Violation(f"event_{row['state']}", row["tries"], example))
        elif row["id"] not in received:
            found.append(Violation("event_delivered_but_never_received", 1, example))
    return found
