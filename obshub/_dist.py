"""Installed distributions' versions (for user agents, ``obshub plugins`` and plugins)."""

from __future__ import annotations

import functools
from importlib import metadata

__all__ = ["UNKNOWN_VERSION", "distribution_version"]

#: What `distribution_version` answers for a distribution that is not installed.
UNKNOWN_VERSION = "0+unknown"


@functools.cache
def distribution_version(name: str) -> str:
    """The installed version of distribution ``name``, or ``"0+unknown"`` when it is not.

    Running from a source tree without installing is the usual "not installed".
    """
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION
