"""Each config key, declared once: on the settings field it fills, as the field's metadata
(:func:`key`): its name in the TOML, what it may say in words, and its range (``_bounds``).

From there come the words every error naming a key says (the reader's, ``_config``), the
checks the settings make at construction (:func:`check`, the one range check of a field, used
by the reader too), and the tables of keys (``TOP_KEYS`` and the others, in ``_settings`` and
``_coordination``) that the README's key table is held to (``tests/test_config_keys.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from typing import Any

from ._bounds import describe, within

__all__ = ["Key", "check", "choice", "declared", "key", "keys"]

#: The metadata entry of a field that is a config key.
_KEY = "sched_accel_key"


@dataclass(frozen=True, slots=True)
class Key:
    """What one key may say: ``help`` in words, then its range in words when it has one
    (``range``, a name of ``_bounds.BOUNDS``), then ``tail`` (its default, in words)."""

    help: str
    range: str | None = None
    tail: str = ""
    #: Its name in the TOML, where it differs from the field's (``control_file``).
    toml: str | None = None
    #: For a key that is neither a number nor a flag: what a value becomes (``["GET"]`` ->
    #: ``frozenset({"GET"})``), ValueError when it is not allowed (then :attr:`text` says what is).
    parse: Callable[[Any], Any] | None = None

    @property
    def text(self) -> str:
        """Everything it may say, in words: what an error naming it says is allowed."""
        return self.help + (describe(self.range) if self.range is not None else "") + self.tail

    def allows(self, value: object) -> bool:
        """Whether ``value`` is within its range (always, for a key without one)."""
        return self.range is None or within(self.range, value)


def key(
    help: str,
    *,
    range: str | None = None,
    tail: str = "",
    toml: str | None = None,
    parse: Callable[[Any], Any] | None = None,
    **given: Any,
) -> Any:
    """A settings field that is a config key: ``field(**given)``, with the key's declaration."""
    return field(**given, metadata={_KEY: Key(help, range, tail, toml, parse)})


def choice(*allowed: str) -> Callable[[Any], Any]:
    """The ``parse`` of a key that is one of ``allowed``."""

    def parse(value: Any) -> Any:
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(value)
        return value

    return parse


@functools.cache
def declared(cls: type) -> tuple[tuple[Field[Any], Key], ...]:
    """The fields of settings class ``cls`` that are config keys, in their order, with theirs
    (read once per class: every settings object made checks its own through them)."""
    return tuple((f, f.metadata[_KEY]) for f in fields(cls) if _KEY in f.metadata)


def keys(cls: type) -> dict[str, str]:
    """The keys of settings class ``cls``, by their TOML name: what each may say, in words."""
    return {k.toml or f.name: k.text for f, k in declared(cls)}


def check(settings: object, owner: str) -> None:
    """Raise ValueError naming ``owner.key``, the value and what is allowed, for the first field
    of ``settings`` its key does not allow (a field whose default is None may be None); a
    field whose key parses its value holds the parsed value after (a list: a tuple, ...)."""
    cls: type = type(settings)
    for f, k in declared(cls):
        value = getattr(settings, f.name)
        optional = f.default is None  # unset is allowed
        if value is None and optional:
            continue
        if k.range is not None and not k.allows(value):
            unset = " or unset" if optional else ""
            raise ValueError(f"{owner}.{k.toml or f.name} must be {describe(k.range)}{unset}, got {value!r}")
        if k.parse is not None:
            try:
                parsed = k.parse(value)
            except ValueError:
                raise ValueError(f"{owner}.{k.toml or f.name} = {value!r} is not allowed: {k.text}") from None
            if parsed is not value:
                object.__setattr__(settings, f.name, parsed)  # frozen: set once, at construction
