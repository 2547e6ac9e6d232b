"""The method registry: canonical name -> method class, with metadata."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from ..core.errors import ParameterError

if TYPE_CHECKING:  # pragma: no cover
    from .base import Method

_REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator adding a method under its canonical ``name``."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} has no canonical name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise TypeError(f"method name {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def get_method(name: str) -> type[Method]:
    """The class registered as ``name``; unknown names raise with the closest matches."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_") if isinstance(name, str) else name
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(str(key), list(_REGISTRY), n=4, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ParameterError(f"unknown method {name!r}.{hint} xw.methods.available() lists all methods.")


def available(family: str | None = None, modality: str | None = None) -> list[dict[str, Any]]:
    """Every registered method: name, family, modalities, reference, default parameters."""
    rows = []
    for name in sorted(_REGISTRY, key=lambda n: (_REGISTRY[n].family, n)):
        cls = _REGISTRY[name]
        if family and cls.family != family:
            continue
        if modality and modality not in cls.modalities:
            continue
        rows.append(
            {
                "name": name,
                "family": cls.family,
                "modalities": tuple(cls.modalities),
                "reference": cls.reference,
                "class": cls.__name__,
                "defaults": dict(cls.defaults),
            }
        )
    return rows
