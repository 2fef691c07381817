"""`rtserver audit` finds money that does not add up (on a database of its own, broken on purpose)."""
import dataclasses

import pymysql
import pytest

from storage import audit
from storage.db import MysqlUrl
from storage.migrate import migrate
from tests.conftest import run_cli


REFUND_ROW = ("INSERT INTO provider_refunds (out_refund_no, kind, ref, provider, out_trade_no,"
              " trade_no, rp_id, user_id, amount, state, answers, add_time, update_time)"
              " VALUES ('{no}', '{kind}', '{ref}', 'wechat', 'RP9T0', '4200X', 9, 1, 1.00,"
              " '{state}', '[]', 0, 0)")


@pytest.fixture
def scratch(run_settings):
    """A migrated database of this test's own, dropped afterwards."""
    settings = dataclasses.replace(run_settings,
                                   mysql_url=run_settings.mysql_url + "_audit")
    migrate(settings.mysql_url)
    u = MysqlUrl.parse(settings.mysql_url)
    conn = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password,
                           database=u.database, autocommit=True)
    yield settings, conn.cursor()
    conn.cursor().execute(f"DROP DATABASE `{u.database}`")
    conn.close()


def test_audit_passes_on_money_that_adds_up(scratch):
    settings, cur = scratch
    cur.execute("INSERT INTO users (id, name, add_time) VALUES (1, 'a', 0)")
    cur.execute("INSERT INTO wallets VALUES (1, 5.00, 0)")
    cur.execute("INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
                " VALUES (1, 'deposit', 'd1', 5.00, 5.00, 0)")
    result = run_cli(settings, "audit")
    assert result.returncode == 0, result.stdout
    assert "money put in (deposits + provider payments): 5.00" in result.stdout


def test_withdrawn_money_has_left_and_the_audit_counts_it_out(scratch):
    settings, cur = scratch
    test_audit_passes_on_money_that_adds_up(scratch)
    cur.execute("UPDATE wallets SET balance = 3.00 WHERE user_id = 1")
    cur.execute("INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
                " VALUES (1, 'withdraw', 'w1', -2.00, 3.00, 0)")
    result = run_cli(settings, "audit")
    assert result.returncode == 0, result.stdout
    assert "wallets: 3.00" in result.stdout and "withdrawn: 2.00" in result.stdout


@pytest.mark.parametrize("breakage, rule", [
    (["UPDATE wallets SET balance = 7.00 WHERE user_id = 1",
      "INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
      " VALUES (1, 'withdraw', 'w1', 2.00, 7.00, 0)"],
     "withdrawal that did not take money out"),
    (["UPDATE wallets SET balance = 3.00 WHERE user_id = 1",
      "INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
      " VALUES (1, 'withdrawal', 'w1', -2.00, 3.00, 0)"],
     "money put in differs from money held"),
    (["INSERT INTO daily_sends VALUES (1, '2025-01-01', 1, 1.00)"],
     "day's sending differs from the packets counted on it"),
    (["INSERT INTO red_packet (id, user_id, for_id, type, intro, number, total_money, add_time,"
      " send_day) VALUES (9, 1, 1, 3, 'x', 1, 1.00, 0, '2025-01-01')",
      "INSERT INTO red_packet_log (rp_id, seq, money, add_time) VALUES (9, 1, 1.00, 0)",
      "INSERT INTO daily_sends VALUES (1, '2025-01-01', 1, 2.00)"],
     "day's sending differs from the packets counted on it"),
    (["INSERT INTO wallets VALUES (2, 1.00, 0)"], "wallet balance differs"),
    (["INSERT INTO red_packet (id, user_id, for_id, type, intro, number, total_money, add_time)"
      " VALUES (9, 1, 1, 3, 'x', 2, 1.00, 0)",
      "INSERT INTO red_packet_log (rp_id, seq, money, add_time) VALUES (9, 1, 0.50, 0)",
      "INSERT INTO red_packet_log (rp_id, seq, money, add_time) VALUES (9, 2, 0.49, 0)"],
     "packet shares do not add up"),
    (["INSERT INTO red_packet (id, user_id, for_id, type, intro, number, total_money, add_time,"
      " pay_status) VALUES (9, 1, 1, 3, 'x', 1, 1.00, 0, 1)",
      "INSERT INTO red_packet_log (rp_id, seq, money, add_time) VALUES (9, 1, 1.00, 0)"],
     "balance-paid packet without exactly its pay row"),
    (["UPDATE wallets SET balance = 7.00 WHERE user_id = 1",
      "INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
      " VALUES (1, 'deposit', 'd2', 2.00, 2.00, 0)"],
     "ledger row whose balance is not the running total"),
    (["INSERT INTO wallets VALUES (2, 1.00, 0)",
      "INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
      " VALUES (2, 'void_refund', 'sandbox:T9', 1.00, 1.00, 0)"],
     "money returned for a provider payment that did not come in"),
    (["INSERT INTO red_packet (id, user_id, for_id, type, intro, number, total_money, add_time,"
      " return_money, is_cli_handle) VALUES (9, 1, 1, 3, 'x', 1, 1.00, 0, 1.00, 1)",
      "INSERT INTO red_packet_log (rp_id, seq, money, add_time, is_refunded)"
      " VALUES (9, 1, 1.00, 0, 1)",
      "UPDATE wallets SET balance = 7.00 WHERE user_id = 1",
      "INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
      " VALUES (1, 'refund', '9', 2.00, 7.00, 0)"],
     "refund booked differs"),
    # A packet's expiry refund sent to a provider and credited to the balance as well.
    (["INSERT INTO red_packet (id, user_id, for_id, type, intro, number, total_money, add_time,"
      " return_money, is_cli_handle) VALUES (9, 1, 1, 3, 'x', 1, 1.00, 0, 1.00, 1)",
      "INSERT INTO red_packet_log (rp_id, seq, money, add_time, is_refunded)"
      " VALUES (9, 1, 1.00, 0, 1)",
      REFUND_ROW.format(no="RF0000000009E", kind="refund", ref="9", state="succeeded"),
      "UPDATE wallets SET balance = 6.00 WHERE user_id = 1",
      "INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance, add_time)"
      " VALUES (1, 'refund', '9', 1.00, 6.00, 0)"],
     "refund booked differs"),
    # A refund the provider gave up on, never credited.
    ([REFUND_ROW.format(no="RF0000000009E", kind="refund", ref="9", state="failed")],
     "refund the provider gave up on, not credited to the balance"),
    # A late payment refunded to a provider that never received it.
    ([REFUND_ROW.format(no="RF0000000009L0a1b2c3d4e5f", kind="void_refund",
                        ref="wechat:4200X", state="requested")],
     "refund sent to a provider for a payment that did not come in"),
])
def test_audit_fails_on_money_that_does_not(scratch, breakage, rule):
    settings, cur = scratch
    test_audit_passes_on_money_that_adds_up(scratch)
    for statement in breakage:
        cur.execute(statement)
    result = run_cli(settings, "audit")
    assert result.returncode == 1
    assert f"MISMATCH: {rule}" in result.stdout


def test_every_rule_runs_and_finds_ledger_rows_by_their_kind_ref_key(scratch):
    """No rule mixes collations (refs compare byte for byte, ids as text do not), and each one
    that matches a ledger row to an id looks it up on (kind, ref): losing that key once made
    the audit 8 times slower."""
    settings, cur = scratch
    for rule, sql in audit.RULES.items():
        cur.execute("EXPLAIN " + sql)
        names = [column[0] for column in cur.description]
        plan = {row["table"]: row for row in (dict(zip(names, r)) for r in cur.fetchall())}
        if "AND l.ref = " in sql:  # a ledger row matched to an id
            ledger = plan["l"]
            assert ledger["key"] == "one_movement" and ledger["type"] in ("eq_ref", "ref"), rule
            assert len(ledger["ref"].split(",")) == 2, f"{rule}: only `kind` of the key: {ledger}"
