"""Read-only containers for span values shared by every exporter of a config.

A span snapshot is built once per event and config and handed to every
exporter of that config. Its ``input``, ``output``, ``metadata``,
``attributes`` and ``parameters`` are therefore made of `FrozenDict` and
`FrozenList`: subclasses of ``dict`` and ``list`` (so ``isinstance(x, dict)``,
``json.dumps``, ``==`` and ``repr`` behave as before) whose mutating methods
raise ``TypeError``. One exporter cannot change what another receives.

``dict(x)``, ``list(x)``, ``x.copy()``, ``copy.copy(x)`` give a plain,
mutable, shallow copy; `thaw` (and ``copy.deepcopy(x)``) a plain, mutable,
deep copy. Pickling keeps the read-only types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

__all__ = ["FrozenDict", "FrozenList", "freeze", "frozen_dict", "frozen_list", "thaw"]

_HINT = (
    "span values are shared by every exporter of the config and are read-only; "
    "make a mutable copy first (dict(x), list(x) or obshub.spans.thaw(x))"
)
_ATOMS = frozenset({str, int, float, bool, type(None)})


def _refuse(self: object, *_args: Any, **_kwargs: Any) -> NoReturn:
    raise TypeError(f"'{type(self).__name__}' is read-only: {_HINT}")


class FrozenDict(dict):  # type: ignore[type-arg]
    """A ``dict`` that cannot be changed, nor can the containers inside it.

    Built from any mapping (or what ``dict()`` takes); nested dicts, lists and
    tuples are frozen too, so a `FrozenDict` is read-only all the way down.
    """

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        changed = [
            (key, frozen)
            for key, value in dict.items(self)
            if type(value) not in _ATOMS and (frozen := freeze(value)) is not value
        ]
        for key, frozen in changed:
            dict.__setitem__(self, key, frozen)

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def copy(self) -> dict[Any, Any]:
        """A plain, mutable, shallow copy (nested values stay read-only)."""
        return dict(self)

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, _memo: dict[int, Any]) -> Any:
        return thaw(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(list):  # type: ignore[type-arg]
    """A ``list`` that cannot be changed, nor can the containers inside it."""

    __slots__ = ()

    def __init__(self, *args: Any) -> None:
        list.__init__(self, *args)
        for index, value in enumerate(self):
            if type(value) not in _ATOMS:
                frozen = freeze(value)
                if frozen is not value:
                    list.__setitem__(self, index, frozen)

    __setitem__ = _refuse
    __delitem__ = _refuse
    __iadd__ = _refuse
    __imul__ = _refuse
    append = _refuse
    extend = _refuse
    insert = _refuse
    pop = _refuse
    remove = _refuse
    clear = _refuse
    sort = _refuse
    reverse = _refuse

    def copy(self) -> list[Any]:
        """A plain, mutable, shallow copy (nested values stay read-only)."""
        return list(self)

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, _memo: dict[int, Any]) -> Any:
        return thaw(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


def freeze(value: Any) -> Any:
    """``value`` with every dict, list and tuple inside it made read-only.

    Dicts (and other mappings) become `FrozenDict`, lists `FrozenList`,
    tuples stay tuples of frozen items; scalars and other objects are
    returned as they are. A value that is frozen already is returned
    unchanged, without a copy.
    """
    kind = type(value)
    if kind is FrozenDict or kind is FrozenList or kind in _ATOMS:
        return value
    if kind is dict or (isinstance(value, Mapping) and not isinstance(value, FrozenDict)):
        return FrozenDict(value)
    if kind is list or (isinstance(value, list) and not isinstance(value, FrozenList)):
        return FrozenList(value)
    if kind is tuple:
        items = tuple(freeze(item) for item in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


_new_dict = dict.__new__
_fill_dict = dict.update
_new_list = list.__new__
_fill_list = list.extend


def frozen_dict(items: dict[Any, Any]) -> FrozenDict:
    """A `FrozenDict` of ``items``, whose values must be frozen already (no check)."""
    out: FrozenDict = _new_dict(FrozenDict)
    _fill_dict(out, items)
    return out


def frozen_list(items: list[Any]) -> FrozenList:
    """A `FrozenList` of ``items``, which must be frozen already (no check)."""
    out: FrozenList = _new_list(FrozenList)
    _fill_list(out, items)
    return out


def thaw(value: Any) -> Any:
    """A plain, mutable, deep copy of a (frozen) JSON-like value.

    Dicts and other mappings become ``dict``, lists and tuples ``list``;
    other values are returned as they are.
    """
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(item) for item in value]
    return value
