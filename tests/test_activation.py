"""install()/uninstall(): patching before and after import, idempotence, the flag, aliases."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

import sched_accel
from sched_accel import _patching

from .conftest import App

JOBS = """
    from client import fetch

    def update(tokens):
        return [fetch(t) for t in tokens]
"""
CLIENT = """
    CALLS = []

    def fetch(token):
        CALLS.append(token)
        return token * 2
"""
ACCEL = """
    import client

    RAN = []

    def update(tokens):
        RAN.append(list(tokens))
        return [client.fetch(t) for t in tokens]
"""
CONFIG = """
    [[targets]]
    loop = "jobs:update"
    fetch = "client:fetch"
    pure = true  # the fakes record their calls: a write, known to be harmless
    items = "tokens"
    replacement = "accel:update"
"""


@pytest.fixture
def replace_app(app: App, monkeypatch: pytest.MonkeyPatch) -> App:
    """A loop in jobs.py with a replacement in accel.py, flag on."""
    app.write("jobs.py", JOBS)
    app.write("client.py", CLIENT)
    app.write("accel.py", ACCEL)
    app.config(CONFIG)
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
    return app


def test_patches_a_module_imported_before_install(replace_app: App) -> None:
    """A target module already imported is patched at install()."""
    jobs = importlib.import_module("jobs")
    assert sched_accel.install() is True
    assert jobs.update([1, 2]) == [2, 4]
    assert sys.modules["accel"].RAN == [[1, 2]]
    assert sched_accel.patched_targets() == ["jobs:update"]


def test_patches_a_module_imported_after_install(replace_app: App) -> None:
    """A target module imported later is patched by the post-import hook."""
    assert sched_accel.install() is True
    assert "jobs" not in sys.modules
    jobs = importlib.import_module("jobs")
    assert _patching.is_ours(jobs.update)
    assert jobs.update([3]) == [6]
    assert sys.modules["accel"].RAN == [[3]]


def test_install_twice_wraps_once(replace_app: App) -> None:
    """install() is idempotent: one wrapper, one replacement call per loop call."""
    jobs = importlib.import_module("jobs")
    sched_accel.install()
    sched_accel.install()
    jobs.update([1])
    assert sys.modules["accel"].RAN == [[1]]
    assert not _patching.is_ours(jobs.update.__wrapped__)


def test_flag_off_installs_nothing(replace_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the flag off, install() patches nothing and the function is the original object."""
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "0")
    jobs = importlib.import_module("jobs")
    original = jobs.update
    assert sched_accel.install() is False
    assert jobs.update is original


def test_uninstall_restores_the_original_object(replace_app: App) -> None:
    """uninstall() puts back the very function objects that were there."""
    jobs = importlib.import_module("jobs")
    client = importlib.import_module("client")
    original_loop, original_fetch = jobs.update, client.fetch
    sched_accel.install()
    assert jobs.update is not original_loop
    sched_accel.uninstall()
    assert jobs.update is original_loop
    assert client.fetch is original_fetch
    assert jobs.fetch is original_fetch


def test_alias_bound_with_from_import_is_reached(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """The per-item function bound by `from client import fetch` in the loop module is reached."""
    app.write("jobs.py", JOBS)
    app.write("client.py", CLIENT)
    app.write("accel.py", "def boom(tokens):\n    raise RuntimeError('boom')\n")
    app.config(CONFIG.replace("accel:update", "accel:boom"))
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    jobs = importlib.import_module("jobs")
    sched_accel.install()
    assert _patching.is_ours(jobs.fetch)
    assert jobs.update([1, 2, 3]) == [2, 4, 6]  # the replacement raised: the original ran
    assert sys.modules["client"].CALLS == [1, 2, 3]
    run = [line for line in capture_events if line.startswith("sched_accel.run")]
    assert len(run) == 1
    assert "outcome=fallback" in run[0]


def test_broken_config_installs_nothing(app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]) -> None:
    """A config that does not validate is logged in one line and nothing is patched."""
    app.write("jobs.py", JOBS)
    app.write("client.py", CLIENT)
    app.config('[[targets]]\nloop = "jobs:update"\nconcurrency = 0\nreplacement = "accel:update"\n')
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    jobs = importlib.import_module("jobs")
    original = jobs.update
    assert sched_accel.install() is False
    assert jobs.update is original
    errors = [line for line in capture_events if "config_invalid" in line]
    assert len(errors) == 1
    assert "concurrency = 0" in errors[0]


def test_unresolved_target_leaves_others_patched(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A target that does not resolve is reported; the other targets are still patched."""
    app.write("jobs.py", textwrap.dedent(JOBS) + "\ndef other(tokens):\n    return tokens\n")
    app.write("client.py", CLIENT)
    app.write("accel.py", textwrap.dedent(ACCEL) + "\ndef other(tokens):\n    return ['accel']\n")
    app.config(
        textwrap.dedent(CONFIG)
        + '\n[[targets]]\nloop = "jobs:nope"\nreplacement = "accel:update"\n'
        + '\n[[targets]]\nloop = "jobs:other"\nreplacement = "accel:other"\n'
    )
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    jobs = importlib.import_module("jobs")
    sched_accel.install()
    assert jobs.other([1]) == ["accel"]
    assert any("target_unresolved" in line and "jobs:nope" in line for line in capture_events)


def test_install_with_the_flag_off_logs_nothing(
    replace_app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """install() called by the app with the flag off is silent: nothing observable changes."""
    monkeypatch.delenv("ENABLE_SCHEDULER_OPTIMIZATION")
    assert sched_accel.install() is False
    assert capture_events == []


def test_reset_forgets_the_process_state(replace_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """sched_accel.reset(), for tests: uninstalled, the targets' breakers dropped, log routing as the environment says."""
    from sched_accel import _activation, _log

    assert sched_accel.install()
    import jobs

    assert sched_accel.patched_targets() == ["jobs:update"]
    assert _activation._state.breakers
    sched_accel.log_to_stdlib()
    sched_accel.reset()
    assert not sched_accel.is_active() and sched_accel.patched_targets() == []
    assert not _activation._state.breakers
    assert _log._router.route == "auto"
    assert not _patching.is_ours(jobs.update)


LIBRARY_FETCH = """
    import httpx

    CLIENT = httpx.Client()

    def prices(base, tokens):
        return [CLIENT.get(f"{base}/item/{token}").json()["value"] for token in tokens]
"""


@pytest.mark.slow
@pytest.mark.parametrize("pure", [False, True], ids=["undeclared", "pure"])
def test_a_library_method_as_fetch_prefetches_the_loops_requests(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], pure: bool
) -> None:
    """fetch = "httpx:Client.get" is never patched (pure = true or not): one warning, then HTTP-level prefetch."""
    import httpx

    from .faultserver import FaultServer, value_of

    app.write("library_fetch.py", LIBRARY_FETCH)
    app.config(
        '[[targets]]\nloop = "library_fetch:prices"\nfetch = "httpx:Client.get"\nitems = "tokens"\nconcurrency = 4\n'
        + ("pure = true\n" if pure else "")
    )
    original = vars(httpx.Client)["get"]
    library_fetch = importlib.import_module("library_fetch")
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    assert vars(httpx.Client)["get"] is original
    events = [line for line in capture_events if "fetch_is_library" in line or "fetch_not_shadowed" in line]
    assert len(events) == 1 and events[0].startswith("sched_accel.fetch_is_library")
    assert "httpx:Client.get is defined in httpx" in events[0] and 'fetch = "http"' in events[0]
    tokens = [f"t{i}" for i in range(8)]
    try:
        with FaultServer(latency=0.01) as server:
            assert library_fetch.prices(server.url, tokens) == [value_of(t) for t in tokens]
    finally:
        library_fetch.CLIENT.close()
    [run] = [line for line in capture_events if line.startswith("sched_accel.run ")]
    assert "prefetch=http" in run


def test_a_library_method_as_fetch_in_replace_mode_is_not_patched(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """In replace mode a library method as fetch is an error logged once; the loop is still patched, the method is not."""
    import httpx

    app.write("jobs.py", JOBS)
    app.write("client.py", CLIENT)
    app.write("accel.py", ACCEL)
    app.config(CONFIG.replace('"client:fetch"', '"httpx:Client.get"'))
    original = vars(httpx.Client)["get"]
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    jobs = importlib.import_module("jobs")
    assert sched_accel.install() is True
    assert vars(httpx.Client)["get"] is original
    assert sched_accel.patched_targets() == ["jobs:update"]
    errors = [line for line in capture_events if "fetch_is_library" in line]
    assert len(errors) == 1 and "per-item calls are not counted" in errors[0]
    assert jobs.update([1, 2]) == [2, 4]


# -- install() never raises --------------------------------------------------------------------
HOSTILE = {
    "tool-int": ("sched_accel.toml", b"tool = 1\n", "unknown key tool;"),
    "tool-str": ("pyproject.toml", b'tool = "x"\n', "tool = 'x' is not allowed: a table"),
    "tool-int-pyproject": ("pyproject.toml", b"tool = 1\n", "tool = 1 is not allowed: a table"),
    "our-table-int": ("sched_accel.toml", b"[tool]\nsched_accel = 3\n", "tool.sched_accel = 3 is not allowed: a table"),
    "deep-inline-tables": (
        "sched_accel.toml",
        b"x = " + b"{a = " * 100 + b"1" + b"}" * 100 + b"\n",
        "32 levels deep (line 1)",
    ),
    "deep-arrays": ("sched_accel.toml", b"x = " + b"[" * 100 + b"1" + b"]" * 100 + b"\n", "32 levels deep (line 1)"),
    "deep-dotted-keys": ("sched_accel.toml", b"x" + b".a" * 100 + b" = 1\n", "32 levels deep (under 'x.a.a"),
    "two-mib": ("sched_accel.toml", b"#" * (2 * 1024 * 1024), "is larger than 1 MiB"),
    "binary": (
        "sched_accel.toml",
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16,
        "not UTF-8 text (invalid start byte at byte 0)",
    ),
    "invalid-utf8": (
        "sched_accel.toml",
        b'[[targets]]\nloop = "jobs:\xc3\x28"\n',
        "not UTF-8 text (invalid continuation byte",
    ),
    "nul": ("sched_accel.toml", b'log = "a\x00b"\n', "not valid TOML: Illegal character"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_install_never_raises_on_any_config_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture_events: list[str], case: str
) -> None:
    """Whatever the file holds, install(path) returns False with one config_invalid line saying what to fix."""
    name, data, detail = HOSTILE[case]
    path = tmp_path / name
    path.write_bytes(data)
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install(path) is False
    assert not sched_accel.is_active()
    [line] = capture_events
    assert line.startswith(f"sched_accel.config_invalid - {path}: ") and line.endswith("; the app runs unpatched")
    assert detail in line and "\n" not in line and len(line) < 1000


def test_a_failure_of_ours_while_installing_is_logged_and_undone(
    replace_app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """A bug of ours half-way through install(): one internal_error line, False, and nothing left patched."""
    from sched_accel import _activation

    (replace_app.root / "other.py").write_text("def update(tokens):\n    return tokens\n")
    config = replace_app.root / "sched_accel.toml"
    config.write_text(config.read_text() + '\n[[targets]]\nloop = "other:update"\nreplacement = "accel:update"\n')
    jobs = importlib.import_module("jobs")
    original, arm = jobs.update, _activation._arm

    def arm_then_fail(target: sched_accel.Target, generation: int) -> None:
        arm(target, generation)
        if target.name == "other:update":
            raise RuntimeError("a bug of ours")

    monkeypatch.setattr(_activation, "_arm", arm_then_fail)
    assert sched_accel.install() is False
    assert not sched_accel.is_active() and sched_accel.patched_targets() == []
    assert jobs.update is original
    [line] = [line for line in capture_events if "internal_error" in line]
    assert line.startswith('sched_accel.internal_error where=install error="RuntimeError: a bug of ours"')
    monkeypatch.setattr(_activation, "_arm", arm)
    assert sched_accel.install() is True  # nothing half-done stands in the way of the next try


def test_a_failure_of_ours_while_reading_the_config_is_logged(
    replace_app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """An unexpected exception from the config loader is an internal_error line and False, never raised."""
    from sched_accel import _activation

    def broken(path: object = None) -> object:
        raise KeyError("a bug of ours")

    monkeypatch.setattr(_activation, "load_config", broken)
    assert sched_accel.install() is False
    assert [line.split(" - ")[0] for line in capture_events] == [
        'sched_accel.internal_error where="reading the config" error="KeyError: \'a bug of ours\'"'
    ]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_during_install_still_propagates(
    replace_app: App, monkeypatch: pytest.MonkeyPatch, interrupt: type[BaseException]
) -> None:
    """Ctrl-C or sys.exit() while installing is not swallowed."""
    from sched_accel import _activation

    def interrupted(path: object = None) -> object:
        raise interrupt

    monkeypatch.setattr(_activation, "load_config", interrupted)
    with pytest.raises(interrupt):
        sched_accel.install()
