"""What a shadow would show is dropped: its prints, stream writes, log records and warnings.

- ``sys.stdout``/``sys.stderr``: while a shadow run is active (:func:`swap_streams`, again
  as each shadow starts if they were replaced meanwhile), each is a :class:`StreamProxy`
  that forwards every attribute to the real stream and drops ``write``/``writelines`` in a
  shadow (``print`` looks ``sys.stdout`` up at each call). Its ``buffer`` is proxied too
  (``click.echo`` writes bytes there). A stream object taken before (a handler's, ``print(
  file=f)`` to a file of the app's) is not the proxy: what the shadow writes there is not seen.
- stdlib ``logging``: ``Logger.handle`` is wrapped, so a shadow's record reaches no filter and
  no handler, whatever stream or file the handler holds.
- loguru: ``Logger._log`` is wrapped; its sinks hold the streams they were given at
  ``logger.add``, so the proxy would not reach them.
- ``warnings.warn``/``warn_explicit``: dropped before the warnings registry sees them, so a
  "default" warning the shadow met is still shown once by the real run.

A shadow that has stopped (its ``except``/``finally`` goes on after :class:`Stopped`) is
stopped again by any of these instead.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from ._context import ACTING
from ._wrapping import Args, Kwargs, wrap

__all__ = ["HOOKS", "StreamProxy", "restore_streams", "streams_swapped", "swap_streams"]


class StreamProxy:
    """Stands for ``sys.stdout`` or ``sys.stderr``: the real stream, less a shadow's writes."""

    __slots__ = ("_buffer", "_stream")

    def __init__(self, stream: Any) -> None:
        object.__setattr__(self, "_stream", stream)
        object.__setattr__(self, "_buffer", None)

    def write(self, text: Any) -> Any:
        shadow = ACTING.get()
        if shadow is None:
            return self._stream.write(text)
        shadow.check()
        shadow.dropped += 1
        return len(text)

    def writelines(self, lines: Iterable[Any]) -> None:
        shadow = ACTING.get()
        if shadow is None:
            return self._stream.writelines(lines)  # type: ignore[no-any-return]
        shadow.check()
        shadow.dropped += 1
        return None

    @property
    def buffer(self) -> Any:
        if self._buffer is None:
            object.__setattr__(self, "_buffer", StreamProxy(self._stream.buffer))
        return self._buffer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._stream, name, value)

    def __repr__(self) -> str:
        return repr(self._stream)


_swapped: list[StreamProxy] = []  # every proxy we put in place since the first activate
_lock = threading.Lock()


def swap_streams() -> None:
    """Put a proxy in front of ``sys.stdout`` and ``sys.stderr`` unless one of ours is there
    (at the first activate, and again as a shadow starts if the app or a test runner has
    replaced them since: ``contextlib.redirect_stdout``, pytest's capture)."""
    with _lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and type(stream) is not StreamProxy:
                proxy = StreamProxy(stream)
                _swapped.append(proxy)
                setattr(sys, name, proxy)


def streams_swapped() -> bool:
    """Whether both streams are proxies of ours (the cheap check a starting shadow makes)."""
    return type(sys.stdout) is StreamProxy and type(sys.stderr) is StreamProxy


def restore_streams() -> None:
    """Take our proxies out again where they still are (the last deactivate does); a stream
    set by someone else since stays."""
    with _lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            while type(stream) is StreamProxy and any(stream is proxy for proxy in _swapped):
                stream = stream._stream
            setattr(sys, name, stream)
        _swapped.clear()


def _drop(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> None:
    shadow = ACTING.get()
    if shadow is None:  # pragma: no cover - wrapt checked ACTING just before
        return wrapped(*args, **kwargs)  # type: ignore[no-any-return]
    shadow.check()
    shadow.dropped += 1
    return None


def _logging(module: ModuleType) -> None:
    wrap(module.Logger, "handle", _drop, ACTING.get)


def _loguru(module: ModuleType) -> None:
    wrap(module.Logger, "_log", _drop, ACTING.get)


def _warnings(module: ModuleType) -> None:
    wrap(module, "warn", _drop, ACTING.get)
    wrap(module, "warn_explicit", _drop, ACTING.get)


#: (module, what to wrap in it once it is imported).
HOOKS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    ("logging", _logging),
    ("loguru._logger", _loguru),
    ("warnings", _warnings),
)
