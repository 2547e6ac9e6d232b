"""Results keyed by (method, target, parameters), least recently used dropped first.

Parameters are part of the key, so a widget that tries values (a slider over ``gamma``) finds every value
it already computed. Plain data (numbers, strings, lists, dicts) is keyed by value; anything else (a
baseline tensor, a callable) by identity, and the key holds the object, so its id is never reused while
the entry lives.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class _Identity:
    """Key part for a value that is not plain data: equal only to the very same object."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.value is self.value

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__} at {id(self.value):#x}>"


def freeze(value: Any) -> Hashable:
    """A hashable key part for ``value`` (by value for plain data, by identity otherwise)."""
    if value is None or isinstance(value, (str, int, float)):  # bool is an int
        return value
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(freeze(v) for v in value))
    if isinstance(value, dict):
        return ("map", tuple(sorted((str(k), freeze(v)) for k, v in value.items())))
    return _Identity(value)


def params_key(defaults: dict[str, Any], params: dict[str, Any]) -> Hashable:
    """Key of the parameters a method runs with: an explicit default and an omitted one are the same."""
    return freeze({**defaults, **params})


class ResultCache(Generic[V]):
    """A thread-safe mapping that keeps the ``size`` most recently used entries."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a cache needs room for at least one entry")
        self.size = int(size)
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
