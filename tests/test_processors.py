"""Redaction: built-in and user secret keys (normalised, at any depth) and secret-looking values."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import obshub
from obshub.processors import BUILTIN_SECRET_KEYS, REDACTED, Redactor, normalize_key

WAIT = 5.0
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
OPENAI_KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234"
ANTHROPIC_KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"
LANGFUSE_KEY = "pk-lf-0123456789abcdef0123"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


def make_span(**fields: Any) -> obshub.Span:
    return obshub.Span(trace_id=TRACE_ID, span_id="b7ad6b7169203331", name="s", **fields)


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "api_key",
        "apiKey",
        "OPENAI_API_KEY",
        "x-api-key",
        "Authorization",
        "access_token",
        "refresh-token",
        "client_secret",
        "Cookie",
        "Set-Cookie",
        "aws_secret_access_key",
        "private_key",
        "credit_card",
    ],
)
def test_built_in_secret_keys_are_recognised_in_any_spelling(key: str) -> None:
    assert Redactor().is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["query", "max_tokens", "input_tokens", "author", "session_id", "user_id", "model", "role"],
)
def test_ordinary_keys_are_not_mistaken_for_secrets(key: str) -> None:
    assert not Redactor().is_secret_key(key)


def test_keys_are_normalised_to_lowercase_letters_and_digits() -> None:
    assert normalize_key("X-Api_Key 2") == "xapikey2"
    assert all(k == normalize_key(k) for k in BUILTIN_SECRET_KEYS)


def test_user_keys_match_whatever_their_case_and_separators() -> None:
    redactor = Redactor(keys=("Customer-Email",), builtin=False)
    assert redactor.is_secret_key("customer_email")
    assert redactor.is_secret_key("CUSTOMEREMAIL")
    assert redactor.is_secret_key("billing.customer-email")
    assert not redactor.is_secret_key("password")  # builtin list off
    assert not redactor.is_secret_key("customer")


def test_secret_keys_are_redacted_at_any_depth_in_input_output_metadata_and_attributes() -> None:
    span = make_span(
        input={"messages": [{"role": "user", "headers": {"Authorization": "Basic abc"}}]},
        output=[{"token": "t-123", "text": "ok"}],
        metadata={"db": {"password": "hunter2", "host": "db"}},
        attributes={"user.api_key": "k", "count": 1},
    )
    clean = Redactor().process(span)
    assert clean.input == {"messages": [{"role": "user", "headers": {"Authorization": REDACTED}}]}
    assert clean.output == [{"token": REDACTED, "text": "ok"}]
    assert clean.metadata == {"db": {"password": REDACTED, "host": "db"}}
    assert clean.attributes == {"user.api_key": REDACTED, "count": 1}


def test_the_trace_metadata_and_attributes_each_span_carries_are_redacted() -> None:
    span = make_span(
        trace_metadata={"db": {"password": "hunter2"}}, trace_attributes={"api_key": "k"}
    )
    clean = Redactor().process(span)
    assert clean.trace_metadata == {"db": {"password": REDACTED}}
    assert clean.trace_attributes == {"api_key": REDACTED}


def test_a_secret_key_holding_a_whole_structure_is_redacted_entirely() -> None:
    clean = Redactor().process(make_span(input={"credentials": {"user": "u", "pw": "p"}}))
    assert clean.input == {"credentials": REDACTED}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abcdefgh12345678", f"Authorization: {REDACTED}"),
        (f"my key is {OPENAI_KEY} ok", f"my key is {REDACTED} ok"),
        (ANTHROPIC_KEY, REDACTED),
        (LANGFUSE_KEY, REDACTED),
        ("id AKIAABCDEFGHIJKLMNOP here", f"id {REDACTED} here"),
        (f"jwt={JWT}", f"jwt={REDACTED}"),
    ],
)
def test_values_that_look_like_credentials_are_masked_wherever_they_appear(
    text: str, expected: str
) -> None:
    clean = Redactor().process(make_span(input=text, output={"note": [text]}))
    assert clean.input == expected
    assert clean.output == {"note": [expected]}


@pytest.mark.parametrize(
    "text", ["sk-short", "Bearer", "Bearer token", "the skeleton key", "risk-free investments"]
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor().process(make_span(input=text)).input == text


def test_value_masking_can_be_turned_off() -> None:
    clean = Redactor(values=False).process(make_span(input=OPENAI_KEY, metadata={"pwd": "x"}))
    assert clean.input == OPENAI_KEY
    assert clean.metadata == {"pwd": REDACTED}


def test_redaction_leaves_other_fields_untouched() -> None:
    span = make_span(model="gpt-4o", parameters={"temperature": 0.2}, output=1.5)
    clean = Redactor().process(span)
    assert (clean.model, clean.parameters, clean.output) == ("gpt-4o", {"temperature": 0.2}, 1.5)
    assert clean.trace_id == span.trace_id


def test_redact_settings_build_the_expected_redactor() -> None:
    assert Redactor.from_config(False) is None
    assert Redactor.from_config(True) == Redactor()
    custom = Redactor.from_config(["customer_email"])
    assert custom is not None
    assert custom.is_secret_key("customer_email")
    assert custom.is_secret_key("password")  # a list adds to the built-in keys


def test_a_hub_with_redact_masks_what_exporters_receive_but_not_the_callers_data(
    hub_factory: Any,
) -> None:
    memory = obshub.MemoryExporter()
    hub = hub_factory(exporters=[memory], redact=["customer_email"])
    payload = {"customer_email": "a@b.c", "api_key": "k", "question": f"use {OPENAI_KEY}"}
    original = copy.deepcopy(payload)
    with hub.span("agent", input=payload, metadata={"Customer-Email": "x"}) as agent:
        agent.update(output={"headers": {"authorization": "Bearer abcdefghijklmnop"}})
    assert hub.flush(WAIT)
    assert payload == original
    for event in memory.events:  # started and ended events alike
        assert event.span.input == {
            "customer_email": REDACTED,
            "api_key": REDACTED,
            "question": f"use {REDACTED}",
        }
    span = memory.span("agent")
    assert span.metadata == {"Customer-Email": REDACTED}
    assert span.output == {"headers": {"authorization": REDACTED}}


def test_a_config_file_redact_true_masks_built_in_keys(hub_factory: Any) -> None:
    hub = hub_factory.from_config({"configs": {"p": {"redact": True, "exporters": {"memory": {}}}}})
    with hub.span("login", input={"user": "bob", "password": "hunter2"}):
        pass
    assert hub.flush(WAIT)
    (memory,) = hub.exporters()
    assert memory.span("login").input == {"user": "bob", "password": REDACTED}  # type: ignore[attr-defined]


def test_without_redact_nothing_is_masked(hub_factory: Any) -> None:
    hub, memory = hub_factory.memory()
    with hub.span("login", input={"password": "hunter2"}):
        pass
    assert hub.flush(WAIT)
    assert memory.span("login").input == {"password": "hunter2"}


def test_parameters_status_message_and_error_are_redacted_too() -> None:
    span = make_span(
        parameters={"temperature": 0.2, "api_key": OPENAI_KEY},
        status_message=f"auth failed with Bearer {JWT}",
        error=obshub.SpanError(message=f"bad key {OPENAI_KEY}", type="AuthError", stack=OPENAI_KEY),
    )
    cleaned = Redactor().process(span)
    assert cleaned.parameters == {"temperature": 0.2, "api_key": REDACTED}
    assert JWT not in (cleaned.status_message or "")
    assert cleaned.error is not None
    assert OPENAI_KEY not in cleaned.error.message
    assert OPENAI_KEY not in (cleaned.error.stack or "")
    assert cleaned.error.type == "AuthError"
