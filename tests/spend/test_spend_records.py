"""Spend records as JSON lines, and conversation ids as stored."""

from __future__ import annotations

from _spend_db import record

from turnout.spend.records import SpendRecord, conversation_id


def test_a_record_survives_its_json_line() -> None:
    original = record("a1", tenant_id=None, estimated=True, conversation_id="c")
    assert SpendRecord.from_json(original.to_json()) == original
    assert b"\n" not in original.to_json()


def test_unknown_keys_in_a_line_are_ignored_and_missing_ones_refused() -> None:
    line = b'{"j":"e",' + record("a1").to_json()[1:]
    assert SpendRecord.from_json(line).attempt_id == "a1"
    try:
        SpendRecord.from_json(b'{"attempt_id": "x"}')
    except (KeyError, TypeError, ValueError):
        pass
    else:
        raise AssertionError("a line without fields was accepted")


def test_conversation_ids_are_cleaned_and_cut_never_refused() -> None:
    assert conversation_id("conv-1") == "conv-1"
    assert conversation_id("x" * 500) == "x" * 200
    assert conversation_id("a\x00b\nc") == "abc"
    assert conversation_id("   ") is None
    assert conversation_id(None) is None
    assert conversation_id(42) is None
