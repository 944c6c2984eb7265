"""install() and uninstall(): the one code path behind every way of turning sched_accel on.

The start-up hook, ``sched-accel run`` and a direct call of :func:`install` all end here.
The state is one private object behind a lock. Nothing in here lets an exception reach
the host app from the start-up hook: problems are logged in one line each, and the
targets they concern run unpatched.
"""

from __future__ import annotations

import atexit
import difflib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import _sched_accel_boot as boot

from . import _log, _mainscript, _metrics
from ._companions import patch_closing, patch_fetch, patch_returned_by, patch_sleeps
from ._config import load_config
from ._events import (
    ACTIVE,
    CONFIG_INVALID,
    DISABLED_TARGET_UNKNOWN,
    NEVER_PATCHED,
    NO_TARGETS,
    PATCHED,
    STILL_WAITING,
    TARGET_UNRESOLVED,
)
from ._exceptions import SchedAccelError
from ._off import Switched
from ._patching import Patch, apply
from ._policy import CircuitBreaker, Hosts, patch_http
from ._prefetch import PrefetchMode
from ._replace import ReplaceMode
from ._settings import ReturnedBy, Settings, Target
from ._single import Claims, Present, SingleRun, claim_key, shared_rates
from ._state import ALL, DISABLED_ENV, Controls, LearnedRates
from ._switch import Switch, target_breaker

__all__ = ["activate_from_boot", "install", "installed", "is_active", "patched_targets", "reset", "uninstall"]


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active = False
        self.settings: Settings | None = None
        self.control: Controls | None = None
        self.patches: dict[str, Patch] = {}
        self.breakers: dict[str, CircuitBreaker] = {}
        self.hosts: Hosts | None = None
        self.http = Patch("<http>")
        self.ticks = Patch("<first tick>")  # the schedulers' first tick, while a target waits
        self.said_waiting = False
        self.claims: Claims | None = None  # single_run's, made when a target has it
        self.said_active = False  # this process's start-up line is said (reset() forgets it, for tests)
        self.generation = 0


_state = _State()


def is_active() -> bool:
    """Whether sched_accel is installed in this process (patched loops may accelerate)."""
    return _state.active


def patched_targets() -> list[str]:
    """Names of the targets whose loop is patched right now."""
    with _state.lock:
        return sorted(name for name, patch in _state.patches.items() if patch.installed)


def install(config: str | os.PathLike[str] | Settings | None = None) -> bool:
    """Patch every declared loop, now or when its module is imported.

    Honours ``ENABLE_SCHEDULER_OPTIMIZATION``: with the flag off this does nothing, logs
    nothing and returns False. A config that cannot be used is logged in one line (what,
    where, how to fix) and nothing is patched: False again. It never raises: a failure of
    our own is logged as ``internal_error``, and nothing stays patched. Calling it twice is
    harmless.
    """
    if not boot.flag_value(os.environ.get(boot.FLAG)):
        return False  # silently: with the flag off, nothing of ours may be observable
    with _state.lock:
        if _state.active:
            return True
        try:
            settings = config if isinstance(config, Settings) else load_config(config)
        except SchedAccelError as exc:
            _log.event(CONFIG_INVALID, f"{exc}; the app runs unpatched")
            return False
        except Exception as exc:  # a bug of ours, whatever the config says
            _log.internal_error("reading the config", exc)
            return False
        try:
            _install(settings)
            _say_active(settings)
        except Exception as exc:  # a bug of ours: undo what was done, the app runs unpatched
            _log.internal_error("install", exc)
            uninstall()
            return False
    # A target module found half-loaded (its body still running in another thread) was
    # left to the watcher: call back now for any that has finished meanwhile.
    boot.watcher.settle()
    return True


def _install(settings: Settings) -> None:
    _log.route_as_configured(settings.log)
    if not settings.targets:
        _log.event(NO_TARGETS, "the config declares no [[targets]], so nothing is patched", config=settings.path)
    _state.settings = settings
    _state.control = settings.controls(announce=True)
    _say_unknown_disabled(settings, _state.control.disabled)
    if settings.state_dir and os.path.isdir(os.path.dirname(settings.state_dir)):
        # app.json, for people: which config this app folder is for. Where the state folder's own
        # folder exists (its owner's ~/.local/state), as the first run's record would make it.
        settings.app.describe()
    _state.active = True
    _state.generation += 1
    generation = _state.generation
    prefetching = [t for t in settings.targets if t.mode == "prefetch"]
    # One state per upstream host for the whole process: every target shares its limits.
    learned = LearnedRates(settings.app_dir).kept() if prefetching and settings.app_dir else None
    shared = shared_rates(settings) if prefetching else None
    _state.hosts = Hosts(settings.hosts, sum(t.concurrency for t in prefetching) or None, learned, shared)
    if prefetching:
        patch_http(_state.http, boot.watcher.watch)
        patch_closing(_state.http)
    if any(settings.runs_once(t) for t in settings.targets):
        _state.claims = Claims(settings.coordination, settings.state_dir)  # its backends made at the first claim
    for target in settings.targets:
        _arm(target, generation)
    _metrics.serve(settings.metrics)  # [metrics] prometheus: our endpoint (else nothing, nothing imported)


def _say_active(settings: Settings) -> None:
    """The one start-up line of this process (the first install): its config, its targets,
    those patched and the modules still awaited; and, at exit, the targets never patched."""
    if _state.said_active:
        return
    _state.said_active = True
    patched = [t.name for t in settings.targets if (p := _state.patches.get(t.name)) is not None and p.installed]
    waiting = sorted(
        {
            t.loop.module or t.loop.path or "?"
            for t in settings.targets
            if t.name not in patched and not (t.loop.module and t.loop.module in sys.modules)  # imported: said why not
        }
    )
    _log.event(
        ACTIVE,
        "sched_accel is on in this process; a target waiting is patched when its module is imported",
        config=settings.path,
        targets=len(settings.targets),
        patched=",".join(patched) or "-",
        waiting_for=",".join(waiting) or "-",
    )
    atexit.register(_say_never_patched)
    if waiting:
        _watch_first_tick()


#: A scheduler's tick: the first one after start-up is when a job's module should have been
#: imported (APScheduler 3.x wakes to process its jobs; schedule runs what is pending).
_TICKS = (("apscheduler.schedulers.base", "BaseScheduler", "_process_jobs"), ("schedule", "Scheduler", "run_pending"))


def _watch_first_tick() -> None:
    """While a target's module is awaited: at a scheduler's first tick, say which still are.
    The hook asks one flag per tick until it has spoken, then wrapt calls past it."""

    def first_tick(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        _say_still_waiting()
        return wrapped(*args, **kwargs)

    def listening() -> bool:
        return not _state.said_waiting and _state.active

    for module_name, owner_name, attribute in _TICKS:

        def wrap(module: ModuleType, owner_name: str = owner_name, attribute: str = attribute) -> None:
            owner = getattr(module, owner_name, None)
            if owner is not None and callable(getattr(owner, attribute, None)):
                apply(_state.ticks, owner, attribute, first_tick, listening)

        boot.watcher.watch(module_name, wrap)


def _say_still_waiting() -> None:
    """Once per process: each target whose module is still not imported at the first tick."""
    try:
        with _state.lock:
            if _state.said_waiting or (settings := _state.settings) is None:
                return
            _state.said_waiting = True
            waiting = [
                t
                for t in settings.targets
                if t.loop.module
                and t.loop.module not in sys.modules
                and ((p := _state.patches.get(t.name)) is None or not p.installed)
            ]
        for target in waiting:
            _log.event(
                STILL_WAITING,
                f"the scheduler's first tick came and {target.loop.module} is still not imported, so this loop is not "
                "patched yet (it will be if the module is imported later); if it should be by now, check the module's "
                "name (`sched-accel check` lists what resolves)"
                + boot.script_hint([target.loop.module or ""], settings.path or os.getcwd()),
                target=target.name,
            )
    except Exception as exc:  # a scheduler's tick: nothing of ours may raise there
        _log.internal_error("saying which targets still wait", exc)


def _say_never_patched() -> None:
    """At exit: each declared target whose loop this process never patched."""
    try:
        if not _state.lock.acquire(timeout=1.0):  # a thread of the app's holds it: never hang the exit
            return
        try:
            settings = _state.settings
            if settings is None or not _state.active:
                return
            never = [
                t
                for t in settings.targets
                if t.loop.module
                and t.loop.module not in sys.modules  # not imported (else it said why not patched)
                and ((p := _state.patches.get(t.name)) is None or not p.installed)
            ]
        finally:
            _state.lock.release()
        for target in never:
            _log.event(
                NEVER_PATCHED,
                f"{target.loop.module} was never imported in this process, so this loop never ran accelerated; if it "
                "should have, check the module's name (`sched-accel check` lists what resolves)"
                + boot.script_hint([target.loop.module or ""], settings.path or os.getcwd()),
                target=target.name,
            )
    except Exception:  # at exit, nothing of ours may raise
        pass


def _say_unknown_disabled(settings: Settings, disabled: frozenset[str]) -> None:
    """One line for each name in ``$SCHED_ACCEL_DISABLED_TARGETS`` that is no target here (a
    typo there would leave its target on, silently)."""
    names = [t.name for t in settings.targets]
    for name in sorted(disabled - set(names) - {ALL}):
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; the targets are {', '.join(names) or 'none'}"
        _log.event(
            DISABLED_TARGET_UNKNOWN,
            f"{DISABLED_ENV} names no target of this config{hint}",
            target=name,
            config=settings.path,
        )


def uninstall() -> None:
    """Switch every patched loop off at once, then restore the original functions."""
    with _state.lock:
        _state.active = False
        _state.generation += 1
        boot.watcher.clear()
        for patch in _state.patches.values():
            try:
                patch.remove()
            except Exception as exc:  # pragma: no cover - a wrapper replaced by a third party
                _log.internal_error(f"removing the patch of {patch.name}", exc)
        _state.patches.clear()
        try:
            _state.http.remove()
            _state.ticks.remove()
        except Exception as exc:  # pragma: no cover - a wrapper replaced by a third party
            _log.internal_error("removing the HTTP patches", exc)
        _state.breakers.clear()
        _state.hosts = None
        if _state.claims is not None:
            _state.claims.close()
            _state.claims = None
        _state.settings = None
        _state.control = None


def reset() -> None:
    """Forget everything this process learned, for tests: uninstall, and drop the targets'
    breakers (which outlive an uninstall otherwise) and the log routing chosen since."""
    with _state.lock:
        uninstall()
        _state.breakers.clear()
        _state.said_active = _state.said_waiting = False
    _metrics.reset()
    _log.reset()


@contextmanager
def installed(config: str | os.PathLike[str] | Settings | None = None) -> Iterator[bool]:
    """``with installed(...)``: install for the block, then uninstall (for tests and tools)."""
    try:
        yield install(config)
    finally:
        uninstall()


def activate_from_boot() -> None:
    """Called by the start-up hook once a target module is imported. Never raises. A config
    refused (said in one line) is not read again at the next target module's import."""
    try:
        if not install():
            boot.watcher.clear()
    except Exception as exc:
        _log.internal_error("install", exc)


def _arm(target: Target, generation: int) -> None:
    """Patch ``target`` now if its module is loaded, else when it is."""
    spec = target.loop

    def patch(module: ModuleType) -> None:
        with _state.lock:
            if _state.generation == generation and _state.active:
                _patch(target, module)

    if _mainscript.is_main(spec.module, spec.path):
        _mainscript.when_defined(target.name, spec.qualname, patch)
    elif spec.module is not None:
        boot.watcher.watch(spec.module, patch)


def _patch(target: Target, module: ModuleType) -> None:
    """Install the mode's wrapper on the loop (and the interceptor on the per-item call)."""
    try:
        resolved = target.loop.resolve(module)
        settings, control = _state.settings, _state.control
        assert settings is not None and control is not None
        breaker = _state.breakers.get(target.name) or target_breaker(
            target.name, threshold=settings.breaker_threshold, cooldown=settings.breaker_cooldown
        )
        _state.breakers[target.name] = breaker
        mode: PrefetchMode | ReplaceMode
        if target.mode == "prefetch":
            mode = PrefetchMode(target, resolved, state_dir=settings.app_dir or None, hosts=_state.hosts)
        else:
            mode = ReplaceMode(target, resolved, breaker, state_dir=settings.app_dir or None)
            mode.prepare()
        switch = Switch(target.name, control, breaker, is_active)
        # The switch is asked by Switched, which times a run made unaccelerated (outcome=off).
        wrapper: Switched | SingleRun = Switched(
            target, mode, switch, state_dir=settings.app_dir or None, is_async=resolved.is_async
        )
        enabled: Callable[[], bool] = is_active
        if settings.runs_once(target) and _state.claims is not None:
            # Claims first; the mode's wrapper runs inside it while the switch says yes.
            key = claim_key(settings, target)
            wrapper = SingleRun(target, mode, switch, _state.claims, key=key, is_async=resolved.is_async)
            enabled = Present(target.name, control, is_active)
        patch = _state.patches.setdefault(target.name, Patch(target.name))
        if apply(patch, resolved.owner, resolved.attribute, wrapper, enabled) is None:
            return  # already ours: the start-up hook ran twice, or install() did
        _log.event(
            PATCHED,
            target=target.name,
            mode=target.mode,
            concurrency=target.concurrency,
            kind=resolved.described,
            asynchronous=resolved.is_async,
            **({"single_run": settings.coordination.where} if isinstance(wrapper, SingleRun) else {}),
        )
        if target.fetch is not None:
            patch_fetch(target, mode, module, patch)
        if isinstance(target.items, ReturnedBy):
            patch_returned_by(target, target.items, mode, module, patch)
        if target.skip_sleeps:
            patch_sleeps(module, patch)
    except SchedAccelError as exc:
        _log.event(TARGET_UNRESOLVED, f"{exc}; this loop runs unpatched", target=target.name)
    except Exception as exc:
        _log.internal_error(f"patching {target.name}", exc)
