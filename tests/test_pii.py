"""PII masking: detectors in free text at any depth, actions, idempotence, per sink."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import obshub
from obshub._config import ConfigError
from obshub._pii import DETECTORS, DROPPED, PiiMasker

WAIT = 5.0
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
SALT = "test-salt"
TEXT = "mail me at jane.doe@example.com … card 4111 1111 1111 1111"

FOUND = {
    "email": ["jane.doe@example.com", "A.B+tag@sub.example.co.uk"],
    "phone": ["+44 20 7946 0958", "(555) 123-4567", "555-123-4567", "+33612345678"],
    "card": ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"],
    "iban": ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"],
    "ip": ["192.168.1.20", "2001:db8::1", "fe80::1ff:fe23:4567:890a"],
    "secret": [
        "sk-proj-AbCdEfGhIjKlMnOpQrSt1234",
        "Bearer abcdefghijklmnop",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    ],
}
# Look alike, but are not: failed checksums, versions, dates, times, short numbers.
NOT_FOUND = [
    "4111 1111 1111 1112",  # Luhn fails
    "version 1.2.3.4.5",
    "999.1.1.1",
    "2024-01-15 10:30:00",
    "at 2024-01-15T10:30:00Z",
    "order 12345678",
    "see RFC 2616 section 14.8",
    "std::vector<int>",
    "timestamp 1700000000123",
]


def make_span(**fields: Any) -> obshub.Span:
    return obshub.Span(trace_id=TRACE_ID, span_id="b7ad6b7169203331", name="s", **fields)


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, vs in FOUND.items() for v in vs])
def test_each_detector_masks_what_it_finds_in_free_text(kind: str, value: str) -> None:
    masked = PiiMasker().text(f"before {value} after")
    assert masked == f"before [{kind.upper()}] after"


@pytest.mark.parametrize("text", NOT_FOUND)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert PiiMasker().text(text) == text


def test_checksums_decide_cards_and_ibans() -> None:
    masker = PiiMasker(detectors=["card", "iban"])
    assert masker.text("GB82 WEST 1234 5698 7654 33") == "GB82 WEST 1234 5698 7654 33"
    assert masker.text("GB82 WEST 1234 5698 7654 32") == "[IBAN]"
    assert masker.text("4111 1111 1111 1112") == "4111 1111 1111 1112"


def test_numbers_run_together_are_told_apart() -> None:
    masker = PiiMasker()
    assert masker.text("from 10.0.0.1 2024 on") == "from [IP] 2024 on"
    assert masker.text("hosts 192.168.1.20 2001:db8::1.") == "hosts [IP] [IP]."
    assert masker.text("call 555-123-4567.") == "call [PHONE]."


def test_the_issue_example_is_masked() -> None:
    assert PiiMasker().text(TEXT) == "mail me at [EMAIL] … card [CARD]"


def test_only_the_chosen_detectors_run() -> None:
    masker = PiiMasker(detectors=["email"])
    assert masker.text(TEXT) == "mail me at [EMAIL] … card 4111 1111 1111 1111"


def test_hash_is_salted_joinable_and_ignores_formatting() -> None:
    masker = PiiMasker(action="hash", salt=SALT)
    a = masker.text("card 4111 1111 1111 1111 mail JANE.doe@example.com")
    b = masker.text("card 4111111111111111 mail jane.doe@example.com")
    assert a == b
    assert a.startswith("card [CARD:")
    assert "[EMAIL:" in a
    other = PiiMasker(action="hash", salt="another salt").text("mail jane.doe@example.com")
    assert other != masker.text("mail jane.doe@example.com")
    assert "jane" not in a
    assert "4111" not in a


def test_hash_without_a_salt_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OBSHUB_PII_SALT", raising=False)
    with pytest.raises(ConfigError, match="salt"):
        PiiMasker(action="hash")
    monkeypatch.setenv("OBSHUB_PII_SALT", SALT)
    assert PiiMasker(action="hash").text("x jane.doe@example.com").startswith("x [EMAIL:")


def test_drop_replaces_the_whole_string_holding_pii() -> None:
    masker = PiiMasker(detectors={"email": "drop", "card": "mask"})
    assert masker.text(TEXT) == DROPPED
    assert masker.text("card 4111 1111 1111 1111") == "card [CARD]"
    assert masker.text("nothing personal here") == "nothing personal here"


@pytest.mark.parametrize("action", ["mask", "hash", "drop"])
def test_masking_is_idempotent(action: str) -> None:
    masker = PiiMasker(action=action, salt=SALT)
    text = " ".join(v for vs in FOUND.values() for v in vs)
    once = masker.text(text)
    assert masker.text(once) == once


def test_pii_at_any_depth_of_input_output_metadata_is_masked_in_a_new_span() -> None:
    span = make_span(
        input={"messages": [{"role": "user", "content": f"hi, {TEXT}"}]},
        output=["call +44 20 7946 0958"],
        metadata={"client": {"ip": "10.0.0.7", "n": 4111111111111111}},
        status_message="failed for jane.doe@example.com",
    )
    before = copy.deepcopy(span.to_dict())
    masked = PiiMasker().process(span)
    assert masked is not span
    assert masked.input == {
        "messages": [{"role": "user", "content": "hi, " + TEXT[:11] + "[EMAIL] … card [CARD]"}]
    }
    assert masked.output == ["call [PHONE]"]
    assert masked.metadata == {"client": {"ip": "[IP]", "n": "[CARD]"}}
    assert masked.status_message == "failed for [EMAIL]"
    assert span.to_dict() == before  # the given span is untouched


@pytest.mark.parametrize(
    ("pii", "action", "problem"),
    [
        (["mail"], "mask", "unknown detector"),
        (True, "erase", "pii_action"),
        ({"email": "erase"}, "mask", "pii.email"),
        ("email", "mask", "pii"),
    ],
)
def test_bad_pii_settings_are_config_errors(pii: Any, action: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        PiiMasker.from_config(pii, action)


def test_every_detector_has_a_name_users_type() -> None:
    assert DETECTORS == ("secret", "email", "iban", "card", "ip", "phone")
    assert PiiMasker.from_config(list(DETECTORS)) == PiiMasker()


def test_the_masked_sink_never_sees_pii_while_the_raw_sink_gets_it_unchanged(
    hub_factory: Any,
) -> None:
    raw = obshub.MemoryExporter(instance_name="raw")
    vendor = obshub.MemoryExporter(instance_name="vendor", pii=True)
    hashed = obshub.MemoryExporter(
        instance_name="hashed", pii={"email": "hash", "salt": SALT}, pii_action="hash"
    )
    hub = hub_factory(exporters=[raw, vendor, hashed])
    with hub.span("chat", input={"q": TEXT}, metadata={"deep": [{"note": TEXT}]}) as span:
        with hub.span("tool", input=TEXT):
            pass
        span.update(output="sent to jane.doe@example.com from 192.168.1.20")
    assert hub.flush(WAIT)
    assert raw.span("chat").input == {"q": TEXT}
    assert raw.span("tool").input == TEXT
    assert raw.span("chat").output == "sent to jane.doe@example.com from 192.168.1.20"
    for event in vendor.events:
        dumped = repr(event.span.to_dict())
        assert "jane.doe" not in dumped
        assert "4111" not in dumped
        assert "192.168" not in dumped
    assert vendor.span("chat").input == {"q": "mail me at [EMAIL] … card [CARD]"}
    assert vendor.span("chat").output == "sent to [EMAIL] from [IP]"
    hashed_chat = hashed.span("chat")
    token = hashed_chat.output.split()[2]
    assert token.startswith("[EMAIL:")
    assert token in hashed_chat.input["q"]
    assert "4111 1111 1111 1111" in hashed_chat.input["q"]  # only email hashed there


def test_pii_on_a_config_masks_for_every_exporter_of_it(hub_factory: Any) -> None:
    memory = obshub.MemoryExporter()
    hub = hub_factory(configs={"p": {"pii": ["email", "card"], "exporters": [memory]}})
    with hub.span("chat", input=TEXT):
        pass
    assert hub.flush(WAIT)
    assert memory.span("chat").input == "mail me at [EMAIL] … card [CARD]"


def test_pii_keys_on_an_exporter_table_in_a_config_file(hub_factory: Any) -> None:
    hub = hub_factory.from_config(
        {
            "configs": {
                "p": {
                    "exporters": {
                        "vendor": {"type": "memory", "pii": True, "pii_action": "mask"},
                        "bad": {"type": "memory", "enabled": False},
                    }
                }
            }
        }
    )
    assert hub is not None
    with pytest.raises(ConfigError, match=r"configs\.p\.exporters\.vendor.*pii_action"):
        hub_factory.from_config(
            {"configs": {"p": {"exporters": {"vendor": {"type": "memory", "pii_action": "x"}}}}}
        )


class Refusing(obshub.Exporter):
    """A backend that is down: every export fails (retryable)."""

    name = "refusing"

    def export(self, events: Any) -> None:
        raise obshub.ExportError("down", retryable=True, status=503)


def test_what_a_masked_sink_spools_to_disk_is_masked_too(hub_factory: Any, tmp_path: Any) -> None:
    vendor = Refusing(
        instance_name="vendor", pii=True, spool_dir=str(tmp_path), retry={"max_attempts": 1}
    )
    hub = hub_factory(exporters=[vendor])
    with hub.span("chat", input=TEXT):
        pass
    assert not hub.flush(WAIT)  # spooled, not delivered
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    written = "".join(p.read_text(encoding="utf-8", errors="replace") for p in files)
    assert "[EMAIL]" in written
    assert "jane.doe" not in written
    assert "4111" not in written
