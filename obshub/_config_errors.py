"""The error raised for every configuration mistake, with the full key path."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A configuration mistake, found when the hub is built.

    ``key`` is the full dotted path of the offending key, e.g.
    ``configs.prod.exporters.langfuse.batch.max_size``; ``str()`` gives
    ``"<key>: <problem>"``. Messages never echo string values, so a secret
    put in the wrong place is not printed.
    """

    def __init__(self, problem: str, key: str | None = None) -> None:
        self.problem = problem
        self.key = key
        super().__init__(f"{key}: {problem}" if key else problem)

    def within(self, prefix: str) -> ConfigError:
        """The same error with ``prefix`` put in front of its key path."""
        if not prefix:
            return self
        key = f"{prefix}.{self.key}" if self.key else prefix
        if self.key and self.key.startswith("["):
            key = f"{prefix}{self.key}"
        return ConfigError(self.problem, key)
