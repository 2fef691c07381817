"""Money: wire strings <-> integer fen <-> DECIMAL, never through a float."""

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from rtserver.errors import InvalidAmount
from rtserver.money import format_fen, parse_amount
from storage.db import to_decimal, to_fen


@pytest.mark.parametrize("text, fen", [
    ("0.00", 0),
    ("0.01", 1),
    ("0.10", 10),
    ("1.00", 100),
    ("12.30", 1230),
    ("12.34", 1234),
    ("200.00", 20000),
    ("20000.00", 2000000),
    ("999999999999.99", 99999999999999),
])
def test_parse_amount_accepts(text, fen):
    assert parse_amount(text) == fen


@pytest.mark.parametrize("value", [
    # not a str
    12, 12.34, 0, True, False, None, b"12.34", bytearray(b"1"), Decimal("12.34"), ["1"], {"a": 1},
    # exponents
    "1e2", "1E2", "1.5e1", "1e-2",
    # spaces anywhere, including newlines and non-ASCII spaces
    " 1", "1 ", "1 .00", "1. 00", "1 000", "\t1", "1\n", "\n1", "1\u00a0", "\u30001",
    # signs
    "+1", "-1", "-0.01", "+0.01", "-0",
    # not numbers
    "NaN", "nan", "Infinity", "inf", "-inf", "abc", "1a", "0x10", "1_000", "1,00", "1,000.00",
    # other than exactly two places
    "1", "1.0", "1.000", "0", "0.0", "0.1", "12", "12.3", "0.001", "12.345", "0.010",
    # shapes of a decimal point
    "", ".", "1.", ".5", "..5", "1..0", "1.2.3",
    # leading zeros
    "01", "00", "00.01", "007.00",
    # full-width and other non-ASCII digits
    "１２", "１２.３４", "12.３４", "١٢", "١", "߁", "𝟏",
    # absurdly long
    "1" * 17, "1" * 13, "0." + "0" * 20, "1" * 100000,
])
def test_parse_amount_rejects(value):
    with pytest.raises(InvalidAmount):
        parse_amount(value)


def test_parse_amount_message_is_clear():
    with pytest.raises(InvalidAmount) as exc:
        parse_amount("1e2")
    assert exc.value.code == "invalid_amount"
    assert "decimal" in exc.value.message


@pytest.mark.parametrize("fen, text", [
    (0, "0.00"),
    (1, "0.01"),
    (5, "0.05"),
    (10, "0.10"),
    (99, "0.99"),
    (100, "1.00"),
    (1234, "12.34"),
    (2000000, "20000.00"),
    (-5, "-0.05"),
    (-1234, "-12.34"),
    (-100, "-1.00"),
])
def test_format_fen(fen, text):
    assert format_fen(fen) == text


@pytest.mark.parametrize("value", [1.5, "12", True, None, Decimal(1)])
def test_format_fen_refuses_non_int(value):
    with pytest.raises(TypeError):
        format_fen(value)


@given(st.integers(min_value=0, max_value=10**12))
def test_format_then_parse_round_trips(fen):
    assert parse_amount(format_fen(fen)) == fen


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_the_database_edge_round_trips_fen_exactly(fen):
    d = to_decimal(fen)
    assert d.as_tuple().exponent == -2 and str(d) == format_fen(fen)
    assert to_fen(d) == fen
