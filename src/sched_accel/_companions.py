"""The calls patched beside a target's loop: its per-item call (``fetch``), the call that
returns its items (``items = "returned-by:..."``), the sleeps it skips, and the HTTP
clients' ``close``.

Each is patched once its module is imported (now, if it already is), on the target's
:class:`Patch`, so that uninstalling the target removes them too. A problem with one is
logged in one line and leaves the loop running as it would without it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType

import _sched_accel_boot as boot

from . import _log
from ._events import FETCH_IS_LIBRARY, FETCH_NOT_SHADOWED, FETCH_SHADOWED, FETCH_UNRESOLVED, ITEMS_UNRESOLVED
from ._exceptions import SchedAccelError
from ._integrations import CLOSES, Hook
from ._patching import Patch, aliases, apply, existing
from ._prefetch import (
    FetchInterceptor,
    PrefetchMode,
    SleepSkipper,
    SourceCapture,
    closing,
    library_method,
    mutations,
)
from ._replace import ReplaceMode
from ._settings import ReturnedBy, Target

__all__ = ["patch_closing", "patch_fetch", "patch_returned_by", "patch_sleeps"]


def patch_fetch(target: Target, mode: PrefetchMode | ReplaceMode, loop_module: ModuleType, patch: Patch) -> None:
    spec = target.fetch
    assert spec is not None and spec.module is not None

    def wrap(module: ModuleType) -> None:
        try:
            resolved = spec.resolve(module)
            if _not_run_ahead(target, mode, resolved.function):
                return
            # One interceptor per per-item function, serving every target that declares it.
            counter = existing(resolved.owner, resolved.attribute)
            if not isinstance(counter, FetchInterceptor):
                counter = FetchInterceptor(resolved.is_async)
                apply(patch, resolved.owner, resolved.attribute, counter, counter.enabled)
            counter.add(mode)
            if resolved.kind == "function":
                for alias in aliases(
                    loop_module, resolved.function, skip=resolved.attribute if module is loop_module else None
                ):
                    apply(patch, loop_module, alias, counter, counter.enabled)
            if isinstance(mode, PrefetchMode):
                mode.fetch_async = resolved.is_async
        except SchedAccelError as exc:
            consequence = (
                "the loop runs unaccelerated" if isinstance(mode, PrefetchMode) else "per-item calls are not counted"
            )
            _log.event(FETCH_UNRESOLVED, f"{exc}; {consequence}", target=target.name)
        except Exception as exc:  # pragma: no cover - defensive
            _log.internal_error(f"patching the per-item call of {target.name}", exc)

    _when_loaded(target, spec.module, loop_module, wrap)


def _not_run_ahead(target: Target, mode: PrefetchMode | ReplaceMode, function: Callable[..., object]) -> bool:
    """Whether the per-item function is left alone: an HTTP library's own (never patched), or,
    in prefetch mode, one whose shadow could change Python state the real run reads (stores
    outside itself, ``_mutations``). A prefetch target then prefetches the loop's requests.
    Otherwise it is shadowed (``shadow = true`` skips the check), or served (``pure = true``)."""
    spec = target.fetch
    assert spec is not None
    library = library_method(function)
    if not isinstance(mode, PrefetchMode):
        if library is not None:
            message = f"{spec.text} {library}; it is not patched, so per-item calls are not counted: remove `fetch`"
            _log.event(FETCH_IS_LIBRARY, message, level="ERROR", target=target.name)
        return library is not None
    if library is not None:
        _log.event(
            FETCH_IS_LIBRARY,
            f"{spec.text} {library}: the loop's GET requests are prefetched instead; "
            'remove `fetch` (or say fetch = "http") to declare that',
            level="WARNING",
            target=target.name,
        )
    elif target.pure:  # the user says it only reads: its return value is served
        return False
    elif target.shadow or (verdict := mutations(function)).ok:
        mode.use_shadow()  # its effects are stopped as they happen; the real call runs in place
        why = "shadow = true" if target.shadow else "it changes no state outside itself as far as its code shows"
        _log.event(
            FETCH_SHADOWED,
            f"{spec.text} ({_where(function)}) runs ahead of the loop as a shadow for its reads ({why}); "
            "the real call runs in place",
            target=target.name,
        )
        return False
    else:
        _log.event(
            FETCH_NOT_SHADOWED,
            f"{spec.text} {verdict.why}: a shadow run ahead of the loop could change what the real run reads, "
            "so it is not run ahead: the loop's GET requests are prefetched instead, and its own code runs as before; "
            "set shadow = true if the real run does not read that state (or pure = true if the function only reads)",
            target=target.name,
        )
    mode.use_http()
    return True


def _where(function: Callable[..., object]) -> str:
    """``file:line`` of a function's definition, for the line saying how it is run."""
    code = getattr(getattr(function, "__func__", function), "__code__", None)
    if code is None:
        return "defined in C"
    return f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"


def patch_returned_by(
    target: Target, items: ReturnedBy, mode: PrefetchMode | ReplaceMode, loop_module: ModuleType, patch: Patch
) -> None:
    """Wrap the call whose return value holds the items (``items = "returned-by:..."``)."""
    spec = items.spec
    assert spec.module is not None

    def wrap(module: ModuleType) -> None:
        try:
            resolved = spec.resolve(module)
            # One capture per call, giving each target that declares it its own run's items.
            capture = existing(resolved.owner, resolved.attribute)
            if not isinstance(capture, SourceCapture):
                capture = SourceCapture(resolved.is_async)
                apply(patch, resolved.owner, resolved.attribute, capture, capture.enabled)
            capture.add(mode, target.name)
        except SchedAccelError as exc:
            _log.event(ITEMS_UNRESOLVED, f"{exc}; the loop runs without prefetching", target=target.name)
        except Exception as exc:  # pragma: no cover - defensive
            _log.internal_error(f"patching the item source of {target.name}", exc)

    _when_loaded(target, spec.module, loop_module, wrap)


_SLEEPS = (("time", "sleep", False), ("asyncio", "sleep", True), ("anyio", "sleep", True), ("trio", "sleep", True))


def patch_sleeps(loop_module: ModuleType, patch: Patch) -> None:
    """Wrap time.sleep and the async sleeps (and their aliases in the loop's module) with the
    skipper, which acts only inside a run of a target that has ``skip_sleeps = true``."""
    for module_name, name, is_async in _SLEEPS:

        def wrap(module: ModuleType, name: str = name, is_async: bool = is_async) -> None:
            original = getattr(module, name, None)
            if original is None:
                return
            skipper = existing(module, name)
            if not isinstance(skipper, SleepSkipper):
                skipper = SleepSkipper(is_async)
                apply(patch, module, name, skipper, skipper.enabled)
            for alias in aliases(loop_module, original):
                apply(patch, loop_module, alias, skipper, skipper.enabled)

        boot.watcher.watch(module_name, wrap)


def patch_closing(patch: Patch) -> None:
    """Know when a client is closed, so nothing more is sent ahead through it."""
    for hook in CLOSES:

        def wrap(module: ModuleType, hook: Hook = hook) -> None:
            owner = hook.find(module)
            if owner is not None:
                apply(patch, owner, hook.attribute, closing, _always)

        boot.watcher.watch(hook.module, wrap)


def _always() -> bool:
    return True


def _when_loaded(target: Target, name: str, loop_module: ModuleType, callback: Callable[[ModuleType], None]) -> None:
    """``callback(module)`` once ``name`` is loaded. A loop run as ``__main__`` (``python -m
    job`` or ``python job.py``) may name its own module ``job``: that is ``__main__`` here."""
    spec = target.loop
    own = spec.module if spec.module is not None else os.path.splitext(os.path.basename(spec.path or ""))[0]
    if loop_module.__name__ == "__main__" and name == own:
        callback(loop_module)
    else:
        boot.watcher.watch(name, callback)
