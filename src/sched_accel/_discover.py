"""``sched-accel discover -- COMMAND``: which loops of an app wait on HTTP, and the config for them.

The command runs once, unaccelerated, with the start-up hook in recording mode
(``$SCHED_ACCEL_DISCOVER`` names a private folder; nothing is patched but the HTTP libraries'
send methods, which only watch). For each request the app makes, :func:`record` keeps when it
went, how long it took, and the app's frames on its stack (the stdlib's, site-packages' and
ours left out; a comprehension's frame counts as its function's): for each function of the
app on the way, the function it called next, and, when one of that call's arguments sits in a
list, tuple, set or dict the function holds, the name it holds it by (a parameter, a module's
global, or a local). At exit each process writes what it saw to ``<folder>/<pid>.json``.

:func:`analyse` then finds the loops: a function of the app that, in one call of it, made
requests through the same callee for two or more different arguments is a loop around a
per-item call. They are ranked by the time their requests took, and for each the config to
paste: ``loop`` (by path for a script run as ``__main__``), ``fetch`` (the per-item function,
when it is the app's own; else the loop's own requests are prefetched), ``items`` (the
parameter or module object holding the items; ``"learned"`` when the loop makes them itself).

Nothing is evaluated or imported for this: the frames and the modules already loaded are read,
as ``_prefetch._found`` reads them. Recording costs a stack walk per request (tens of
microseconds); the command's results are its own.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Any

from ._integrations import CLIENTS, LAYERS, Args, Client, Kwargs, Layer

__all__ = ["DISCOVER_ENV", "Loop", "analyse", "load", "start", "toml"]

DISCOVER_ENV = "SCHED_ACCEL_DISCOVER"
#: Requests recorded per process, at most (the rest only counted).
MAX_REQUESTS = 20_000
#: App frames looked at above a request; elements of a container looked through for an argument.
MAX_FRAMES = 64
MAX_SCAN = 10_000


class _Recording:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.dropped = 0
        self.started = time.perf_counter()
        self.folder = ""


_recording = _Recording()


def start(folder: str, watch: Callable[[str, Callable[[ModuleType], object]], None]) -> None:
    """Record every request of this process (``watch`` calls back as each library is imported)
    and write them to ``folder`` at exit."""
    _recording.folder = folder
    for layer in LAYERS.values():  # where each library sends its requests (``_integrations``)

        def wrap(module: ModuleType, layer: Layer = layer) -> None:
            import wrapt

            owner = layer.hook.find(module)
            if owner is not None:
                wrapt.wrap_function_wrapper(owner, layer.hook.attribute, _recorder(CLIENTS[layer.library]))

        watch(layer.hook.module, wrap)
    atexit.register(_write)


def _recorder(client: Client) -> Callable[..., Any]:
    """The wrapper at one library's layer that records each request it sends."""
    if client.is_async:

        async def record_async(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
            sent, (method, url, frames) = time.perf_counter(), _seen(client, args, kwargs)
            try:
                return await wrapped(*args, **kwargs)
            finally:
                _keep(sent, method, url, frames)

        return record_async

    def record(wrapped: Callable[..., Any], instance: Any, args: Args, kwargs: Kwargs) -> Any:
        sent, (method, url, frames) = time.perf_counter(), _seen(client, args, kwargs)
        try:
            return wrapped(*args, **kwargs)
        finally:
            _keep(sent, method, url, frames)

    return record


def _seen(client: Client, args: Args, kwargs: Kwargs) -> tuple[str, str, list[dict[str, Any]] | None]:
    try:
        method, url = client.named(args, kwargs) or ("?", "?")
    except Exception:  # noqa: BLE001 - recording must never touch the app's request
        return "?", "?", None
    return method, url, _frames(url)


def _keep(sent: float, method: str, url: str, frames: list[dict[str, Any]] | None) -> None:
    if frames is None:
        return
    try:
        took = time.perf_counter() - sent
        with _recording.lock:
            if len(_recording.requests) >= MAX_REQUESTS:
                _recording.dropped += 1
                return
            _recording.requests.append(
                {
                    "at": round(sent - _recording.started, 4),
                    "took": round(took, 4),
                    "method": method,
                    "host": url.split("/")[2] if url.count("/") >= 2 else url,
                    "frames": frames,
                }
            )
    except Exception:  # noqa: BLE001, S110 - recording must never touch the app's request
        pass


def _frames(url: str) -> list[dict[str, Any]] | None:
    """The app's frames above this request, innermost first (a comprehension's merged into its
    function's), each with the callee below it and where that callee's arguments are held; the
    innermost, which made the request itself, with the request's URL and where it holds a value
    found in it."""
    from ._prefetch._found import is_library, name_of

    try:
        frame: FrameType | None = sys._getframe(3)
        found: list[dict[str, Any]] = []
        below: FrameType | None = None
        for _ in range(MAX_FRAMES * 4):
            if frame is None or len(found) >= MAX_FRAMES:
                break
            code = frame.f_code
            if is_library(code.co_filename) or "_sched_accel_boot" in code.co_filename:
                frame = frame.f_back
                continue
            if code.co_name.startswith("<") and code.co_name != "<module>":  # <listcomp>, <genexpr>: its function's
                frame = frame.f_back
                continue
            entry: dict[str, Any] = {
                "spec": name_of(frame),
                "file": code.co_filename,
                "line": frame.f_lineno,
                "function": getattr(code, "co_qualname", code.co_name),
                "call": id(frame),
            }
            if below is not None:
                entry["held_as"] = _held_as(frame, _arguments(below))
                entry["argument"] = _argument_key(below)
            else:
                entry["held_as"] = _held_as(frame, [url], in_text=True)
                entry["argument"] = url
            found.append(entry)
            below = frame
            frame = frame.f_back
        return found
    except Exception:  # noqa: BLE001 - recording must never touch the app's request
        return None


def _arguments(frame: FrameType) -> list[Any]:
    code = frame.f_code
    names = [n for n in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount] if n not in ("self", "cls")]
    return [value for name in names if not isinstance(value := frame.f_locals.get(name), ModuleType)]


def _argument_key(frame: FrameType) -> str:
    """Which call this is, by its arguments (two iterations pass different ones)."""
    code = frame.f_code
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    parts = []
    for name in names:
        if name in ("self", "cls"):
            continue
        try:
            parts.append(
                f"{name}={type(frame.f_locals.get(name)).__name__}:{id(frame.f_locals.get(name))}:"
                f"{repr(frame.f_locals.get(name))[:80]}"
            )
        except Exception:  # noqa: BLE001 - an app's __repr__ that raises
            parts.append(f"{name}=?")
    return "|".join(parts)


def _held_as(frame: FrameType, wanted: list[Any], *, in_text: bool = False) -> dict[str, Any] | None:
    """Where ``frame`` holds one of ``wanted`` in a container (``in_text``: a value whose text
    is in the one wanted, a URL): a parameter's name (and position), a module global, or a
    local's name; None when nowhere."""
    if not wanted:
        return None
    code = frame.f_code
    parameters = list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    local_values = dict(frame.f_locals)
    for name, value in local_values.items():
        if _holds(value, wanted, in_text):
            if name in parameters:
                return {"kind": "parameter", "name": name, "position": parameters.index(name)}
            return {"kind": "local", "name": name}
    module = frame.f_globals.get("__name__")
    for name, value in list(frame.f_globals.items()):
        if not name.startswith("__") and _holds(value, wanted, in_text):
            return {"kind": "global", "name": name, "module": module}
    return None


def _holds(container: object, wanted: list[Any], in_text: bool = False) -> bool:
    if isinstance(container, dict):
        values: Iterable[Any] = list(container.keys())[:MAX_SCAN] + list(container.values())[:MAX_SCAN]
    elif isinstance(container, list | tuple | set | frozenset):
        values = list(container)[:MAX_SCAN]
    else:
        return False
    if not in_text:
        from ._prefetch._found import any_same

        return any_same(values, wanted)
    for value in values:
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if len(text) >= 2 and any(text in str(argument) for argument in wanted):
            return True
    return False


def _write() -> None:
    """At exit: this process's requests, in its own file of the folder (owner-only)."""
    try:
        with _recording.lock:
            data = {
                "pid": os.getpid(),
                "argv": sys.argv[:8],
                "requests": _recording.requests,
                "dropped": _recording.dropped,
            }
        path = os.path.join(_recording.folder, f"{os.getpid()}.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, default=str)
    except Exception:  # noqa: BLE001, S110 - at exit, nothing of ours may raise
        pass


# -- the analysis, in the sched-accel process ---------------------------------------------------
@dataclass
class Loop:
    """A function of the app that called the same callee for different arguments, each time
    waiting on HTTP: what to declare for it, and the figures that rank it."""

    loop: str
    file: str
    line: int
    fetch: str | None
    items: str | None
    requests: int = 0
    seconds: float = 0.0
    iterations: int = 0
    hosts: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def load(folder: str) -> list[dict[str, Any]]:
    """Every request recorded in ``folder`` (each process's file)."""
    requests: list[dict[str, Any]] = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as file:
                    data = json.load(file)
                requests.extend(r for r in data.get("requests", []) if isinstance(r, dict))
            except (OSError, ValueError):
                continue
    return requests


def analyse(requests: list[dict[str, Any]]) -> list[Loop]:
    """The loops among the recorded requests, the ones whose requests took longest first."""
    groups: dict[tuple[str, int], dict[str, Any]] = {}
    for request in requests:
        frames = request.get("frames") or []
        seen: set[tuple[str, int]] = set()
        for index, frame in enumerate(frames):
            if not frame.get("spec") or "argument" not in frame:
                continue
            key = (frame["spec"], frame["call"])
            if key in seen:
                continue
            seen.add(key)
            callee = (frames[index - 1].get("spec") or "") if index else ""  # "": the request itself
            group = groups.setdefault(key, {"frame": frame, "callees": defaultdict(set), "requests": [], "held": {}})
            group["callees"][callee].add(frame["argument"])
            group["requests"].append(request)
            if frame.get("held_as"):
                group["held"].setdefault(callee, frame["held_as"])
    found: dict[tuple[str, str], Loop] = {}
    for (spec, _call), group in groups.items():
        callee, arguments = max(group["callees"].items(), key=lambda pair: len(pair[1]))
        if len(arguments) < 2:
            continue  # one call of the callee: no loop around it here
        frame = group["frame"]
        held = group["held"].get(callee)
        loop = found.get((spec, callee))
        if loop is None:
            fetch = callee or None
            loop = found[(spec, callee)] = Loop(spec, frame["file"], frame["line"], fetch, _items(held, callee))
            if fetch is not None and fetch.partition(":")[0].endswith(".py"):
                loop.fetch = None  # a function of a script (its __main__) cannot be named as fetch
                loop.notes.append(
                    f"its per-item function {fetch} is in the script itself, so its requests are "
                    "prefetched instead (HTTP level); moved into a module, it could be named as fetch"
                )
            if held is None:
                loop.notes.append(
                    'its items were not found among what it holds: items = "learned" prefetches, from its '
                    "second run, what the run before asked for"
                )
        loop.requests += len(group["requests"])
        loop.seconds += sum(float(r.get("took", 0.0)) for r in group["requests"])
        loop.iterations = max(loop.iterations, len(arguments))
        loop.hosts.update(str(r.get("host", "?")) for r in group["requests"])
    loops = sorted(found.values(), key=lambda loop: -loop.seconds)
    return [loop for loop in loops if not any(_per_item(loop, other) for other in loops)]


def _per_item(loop: Loop, caller: Loop) -> bool:
    """Whether ``loop`` is ``caller``'s per-item function, making about one request per call
    (a frame's id is reused by its next call, so one that makes one request per call looks,
    by its id, like a loop over its requests)."""
    return caller is not loop and caller.fetch == loop.loop and loop.requests <= 1.5 * caller.iterations


def _items(held: dict[str, Any] | None, callee: str) -> str | None:
    if held is None:
        return None
    if held["kind"] == "parameter":
        return str(held["name"])
    if held["kind"] == "global" and held.get("module") and held["module"] != "__main__":
        return f"{held['module']}:{held['name']}"
    return None


def toml(loop: Loop) -> str:
    """The ``[[targets]]`` table to paste for ``loop``."""
    lines = ["[[targets]]", f"loop = {json.dumps(loop.loop)}"]
    if loop.fetch:
        lines.append(f"fetch = {json.dumps(loop.fetch)}")
    lines.append(f"items = {json.dumps(loop.items or 'learned')}")
    lines.append("concurrency = 8")
    return "\n".join(lines)
