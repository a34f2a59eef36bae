"""Sampling: always, never, or a ratio decided once per trace from the trace id."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obshub import ConfigError, Sampler
from obshub.spans import new_trace_id


def trace_id(low_bits: int, high_bits: int = 0xDEADBEEF) -> str:
    return f"{high_bits:016x}{low_bits:016x}"


def test_no_sampling_setting_means_always() -> None:
    assert Sampler.from_config(None) == Sampler(strategy="always", probability=1.0)


@pytest.mark.parametrize(
    ("value", "strategy", "probability"),
    [
        ("always", "always", 1.0),
        ("never", "never", 0.0),
        ({"strategy": "never"}, "never", 0.0),
        ({"strategy": "ratio", "probability": 0.25}, "ratio", 0.25),
        ({"strategy": "ratio", "probability": 1}, "ratio", 1.0),
    ],
)
def test_sampling_settings_build_the_sampler(value: Any, strategy: str, probability: float) -> None:
    sampler = Sampler.from_config(value)
    assert (sampler.strategy, sampler.probability) == (strategy, probability)


def test_a_ready_sampler_is_used_as_given() -> None:
    sampler = Sampler(strategy="ratio", probability=0.1)
    assert Sampler.from_config(sampler) is sampler


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("sometimes", "strategy"),
        ({"strategy": "ratio"}, "probability"),
        ({"strategy": "ratio", "probability": -0.1}, "probability"),
        ({"strategy": "ratio", "probability": True}, "probability"),
        ({"strategy": "ratio", "probability": "half"}, "probability"),
        ({"strategy": "never", "probability": 0.5}, "probability"),
        ({"rate": 0.5}, "rate"),
        (0.5, None),
    ],
)
def test_invalid_sampling_settings_are_config_errors_naming_the_key(
    value: Any, key: str | None
) -> None:
    with pytest.raises(ConfigError) as raised:
        Sampler.from_config(value)
    assert raised.value.key == key


def test_always_and_never_ignore_the_trace_id() -> None:
    ids = [new_trace_id() for _ in range(100)]
    assert all(Sampler("always").should_sample(t) for t in ids)
    assert not any(Sampler("never").should_sample(t) for t in ids)


def test_a_ratio_keeps_exactly_the_trace_ids_below_the_threshold() -> None:
    sampler = Sampler(strategy="ratio", probability=0.25)
    step = 2**64 // 1000
    kept = [k for k in range(1000) if sampler.should_sample(trace_id(k * step + step // 2))]
    assert kept == list(range(250))


def test_a_ratio_decision_depends_only_on_the_low_64_bits_of_the_trace_id() -> None:
    sampler = Sampler(strategy="ratio", probability=0.5)
    assert sampler.should_sample(trace_id(0, high_bits=2**64 - 1))
    assert not sampler.should_sample(trace_id(2**64 - 1, high_bits=0))


@pytest.mark.parametrize(("probability", "kept"), [(0.0, False), (1.0, True)])
def test_ratio_zero_keeps_nothing_and_ratio_one_keeps_everything(
    probability: float, kept: bool
) -> None:
    sampler = Sampler(strategy="ratio", probability=probability)
    assert sampler.should_sample(trace_id(0)) is kept
    assert sampler.should_sample(trace_id(2**64 - 1)) is kept


@given(
    low=st.integers(min_value=0, max_value=2**64 - 1),
    high=st.integers(min_value=0, max_value=2**64 - 1),
    probability=st.floats(min_value=0.0, max_value=1.0),
)
def test_every_process_takes_the_same_decision_for_the_same_trace(
    low: int, high: int, probability: float
) -> None:
    tid = trace_id(low, high)
    first = Sampler(strategy="ratio", probability=probability).should_sample(tid)
    again = Sampler(strategy="ratio", probability=probability).should_sample(tid)
    assert first == again
    if first:  # a higher probability keeps whatever a lower one kept
        assert Sampler(strategy="ratio", probability=min(1.0, probability + 0.1)).should_sample(tid)


def test_a_ratio_keeps_about_that_share_of_random_traces() -> None:
    sampler = Sampler(strategy="ratio", probability=0.3)
    kept = sum(sampler.should_sample(new_trace_id()) for _ in range(20_000))
    assert 5_000 < kept < 7_000
