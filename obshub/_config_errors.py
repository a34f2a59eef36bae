"""The error raised for every configuration mistake, with the full key path."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["ConfigError", "ErrorCollector", "type_name"]


def type_name(value: Any) -> str:
    """How error messages name a value's type: ``a string``, ``an integer``, ``a table``..."""
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if type(value) in names:
        return names[type(value)]
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


class ConfigError(ValueError):
    """A configuration mistake, found when the hub is built.

    ``key`` is the full dotted path of the offending key, e.g.
    ``configs.prod.exporters.langfuse.batch.max_size``; ``str()`` gives
    ``"<key>: <problem>"``. Messages never echo string values, so a secret
    put in the wrong place is not printed.

    A document with several mistakes raises one error naming all of them:
    ``errors`` holds one single-mistake `ConfigError` per problem (for a single
    mistake, just the error itself) and ``str()`` lists them one a line.
    """

    def __init__(
        self, problem: str, key: str | None = None, *, errors: Sequence[ConfigError] = ()
    ) -> None:
        self.problem = problem
        self.key = key
        self.errors: tuple[ConfigError, ...] = tuple(errors) or (self,)
        super().__init__(f"{key}: {problem}" if key else problem)

    @classmethod
    def combine(cls, errors: Sequence[ConfigError]) -> ConfigError:
        """One error for all of ``errors`` (flattened); itself if there is only one."""
        flat = [single for error in errors for single in error.errors]
        if len(flat) == 1:
            return flat[0]
        lines = "\n".join(f"  - {single}" for single in flat)
        first = flat[0]
        combined = cls(f"{len(flat)} config errors:\n{lines}", errors=flat)
        combined.key = first.key
        return combined

    def within(self, prefix: str) -> ConfigError:
        """The same error with ``prefix`` put in front of its key path."""
        if not prefix:
            return self
        if len(self.errors) > 1:
            return ConfigError.combine([e.within(prefix) for e in self.errors])
        key = f"{prefix}.{self.key}" if self.key else prefix
        if self.key and self.key.startswith("["):
            key = f"{prefix}{self.key}"
        return ConfigError(self.problem, key)


class ErrorCollector:
    """Gathers the `ConfigError` of several independent checks, to report them all at once."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    @contextmanager
    def check(self) -> Iterator[None]:
        """Run a block; a `ConfigError` it raises is kept instead of propagated."""
        try:
            yield
        except ConfigError as exc:
            self.errors.append(exc)

    def add(self, problem: str, key: str | None = None) -> None:
        """Record one mistake."""
        self.errors.append(ConfigError(problem, key))

    def raise_if_any(self) -> None:
        """Raise one error naming every mistake gathered, if there is any."""
        if self.errors:
            raise ConfigError.combine(self.errors)
