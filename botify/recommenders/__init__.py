"""Recommenders by config name. Adding one = one module here with a `@register` class + config.

Every module in this package is imported on first lookup, so a new file registers itself.
"""

from __future__ import annotations

import importlib
import pkgutil

from botify.recommenders.base import (
    REGISTRY,
    Context,
    Recommendation,
    Recommender,
    StepRandom,
    register,
)


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


def get(name: str) -> type[Recommender]:
    if not REGISTRY.get(name):
        _load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown recommender {name!r}; known: {sorted(REGISTRY)}") from None


def build(name: str, ctx: Context, **params) -> Recommender:
    return get(name)(ctx, **params)


def names() -> list[str]:
    _load_all()
    return sorted(REGISTRY)


__all__ = [
    "Context",
    "Recommendation",
    "Recommender",
    "StepRandom",
    "register",
    "get",
    "build",
    "names",
]
