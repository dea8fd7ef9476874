"""A small string registry: one per kind of thing (students, recipes, runners...).

`names()` feeds CLI help, error messages and test parametrization, so a new entry is
visible everywhere at once.
"""

from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from edgekd.errors import ConfigError

T = TypeVar("T")


def did_you_mean(word: str, choices: list[str]) -> str:
    """A hint naming the closest choices, or all of them when none is close."""
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "choose one of: " + ", ".join(choices)


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}", did_you_mean(name, self.names()))
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
