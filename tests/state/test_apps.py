"""_apps.py: each app's own folder of the user's state folder, and what a config's control_file may name."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import sched_accel
from sched_accel import _activation
from sched_accel._config import load_config
from sched_accel._state import AppState, LearnedRates, control_file_problem, known_apps, old_state
from sched_accel._state._apps import app_id

from ..conftest import App

PREFETCH = """
    [[targets]]
    loop = "jobs:collect"
    items = 0
"""


# -- who an app is ---------------------------------------------------------------------------
def test_an_app_is_its_config_path_or_its_namespace() -> None:
    """One config path, one app; another path, another app; a namespace names the app whatever the path."""
    a = app_id(None, "/srv/billing/sched_accel.toml")
    assert a == app_id(None, "/srv/billing/sched_accel.toml")
    assert a != app_id(None, "/srv/billing-staging/sched_accel.toml")
    assert a.startswith("billing-") and len(a) == len("billing-") + 16
    assert app_id("shared", "/srv/a/sched_accel.toml") == app_id("shared", "/srv/b/pyproject.toml")
    assert app_id(None, None) == "default"


def test_the_label_of_an_app_folder_is_one_safe_name() -> None:
    """Whatever a namespace or folder is called, the app's folder is one name inside apps/: no
    separator, no dot-dot, no control character."""
    for namespace in ("../../etc", "a/b", "\x1b[31m", "..", "é" * 80):
        name = app_id(namespace, None)
        assert "/" not in name and ".." not in name and name.isprintable() and name.isascii()
        assert os.path.dirname(os.path.join("/state", "apps", name)) == "/state/apps"


def test_settings_keep_the_app_state_under_apps_in_the_state_folder(app: App) -> None:
    """Settings name the app's folder in apps/ of the control file's folder, and its own control file in it."""
    app.config(PREFETCH)
    settings = load_config()
    state = os.path.dirname(os.environ["SCHED_ACCEL_CONTROL"])
    assert settings.state_dir == state
    assert settings.app_dir == os.path.join(state, "apps", app_id(None, str(app.root / "sched_accel.toml")))
    assert settings.app_control == os.path.join(settings.app_dir, "control.json")


def test_the_coordination_namespace_names_the_app(app: App) -> None:
    """Two configs with one [coordination] namespace are one app (their processes coordinate: they share state)."""
    app.config(PREFETCH + '\n[coordination]\nnamespace = "billing"\n')
    first = load_config().app_dir
    app.config(PREFETCH + '\n[coordination]\nnamespace = "billing"\n', name="other.toml")
    assert load_config().app_dir == first
    assert os.path.basename(first).startswith("billing-")


# -- what a config may name --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/state/billing.json", True),
        ("/state/./billing.json", True),
        ("/state/control.json", False),
        ("/state/apps/x/control.json", False),
        ("/state/../elsewhere/control.json", False),
        ("/home/me/project/control.json", False),
    ],
)
def test_a_config_control_file_is_a_file_directly_in_the_state_folder(path: str, allowed: bool) -> None:
    """Only a file directly in the state folder, other than the user-wide control.json."""
    assert (control_file_problem(path, "/state") is None) is allowed


def test_a_config_control_file_outside_the_state_folder_is_refused_in_settings_too(tmp_path: Path) -> None:
    """Settings made by a program are held to the same rule: a ValueError naming the field."""
    with pytest.raises(ValueError, match="app_control_file = .* is not allowed: it is not in the state folder"):
        sched_accel.Settings(path=None, control_file=str(tmp_path / "control.json"), app_control_file="/etc/x.json")


# -- app.json ----------------------------------------------------------------------------------
def test_app_json_names_the_config_owner_only_and_is_rewritten_only_when_it_differs(tmp_path: Path) -> None:
    """describe() writes app.json (0600, folder 0700) naming the config; again, it does not touch it."""
    state = AppState(str(tmp_path / "state"), "/srv/billing/sched_accel.toml")
    state.describe()
    path = Path(state.folder) / "app.json"
    assert json.loads(path.read_text()) == {
        "version": 1,
        "id": state.id,
        "config": "/srv/billing/sched_accel.toml",
        "namespace": None,
        "control": state.control,
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(state.folder).stat().st_mode) == 0o700
    before = path.stat().st_mtime_ns, path.stat().st_ino
    state.describe()
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_known_apps_lists_every_app_folder_and_never_a_control_file_from_elsewhere(tmp_path: Path) -> None:
    """status --all-apps lists each app with its config; an app.json naming a control file outside the
    state folder is not believed (its default is used), a refused app.json is said."""
    state = tmp_path / "state"
    one = AppState(str(state), "/srv/one/sched_accel.toml")
    two = AppState(str(state), "/srv/two/sched_accel.toml")
    one.describe()
    two.describe()
    about = Path(two.folder) / "app.json"
    about.write_text(json.dumps({**two.about(), "control": "/etc/shadow"}))
    (Path(state) / "apps" / "bare").mkdir()
    refused: list[str] = []
    apps = {app["id"]: app for app in known_apps(str(state), refused)}
    assert set(apps) == {one.id, two.id, "bare"}
    assert apps[one.id]["config"] == "/srv/one/sched_accel.toml"
    assert apps[two.id]["control"] == os.path.join(two.folder, "control.json")
    assert apps["bare"]["config"] is None
    assert refused == []
    about.chmod(0o666)
    refused = []
    known_apps(str(state), refused)
    assert len(refused) == 1 and "writable by other users" in refused[0]


def test_old_flat_state_is_named_not_read(tmp_path: Path) -> None:
    """What a version before per-app state left directly in the state folder is named, for status."""
    assert old_state(str(tmp_path)) == []
    (tmp_path / "runs").mkdir()
    (tmp_path / "hosts.json").write_text("{}")
    assert old_state(str(tmp_path)) == ["runs", "hosts.json"]


# -- two apps of one user share nothing ----------------------------------------------------------
def test_the_rates_one_app_learned_are_not_used_by_another(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """hosts.json is the app's: a rate app A kept is where A starts, never where B starts
    (a staging app's rates never pace production)."""
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    a = app.config(PREFETCH, name="a/sched_accel.toml")
    LearnedRates(load_config().app_dir).save({"api.example.com": 3.0})
    assert sched_accel.install() is True
    assert _activation._state.hosts is not None and "api.example.com" in _activation._state.hosts.learned
    sched_accel.uninstall()
    app.config(PREFETCH, name="b/sched_accel.toml")
    assert sched_accel.install() is True
    assert _activation._state.hosts is not None and "api.example.com" not in _activation._state.hosts.learned
    assert not (Path(os.environ["SCHED_ACCEL_CONTROL"]).parent / "hosts.json").exists()
    sched_accel.uninstall()
    monkeypatch.setenv("SCHED_ACCEL_CONFIG", str(a))
    assert sched_accel.install() is True
    assert _activation._state.hosts is not None and "api.example.com" in _activation._state.hosts.learned


def test_install_names_its_config_in_the_app_folder(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a state folder to write in, a start writes app.json (for people and status --all-apps)."""
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    config = app.config(PREFETCH)
    Path(os.environ["SCHED_ACCEL_CONTROL"]).parent.mkdir(mode=0o700)
    assert sched_accel.install() is True
    about = json.loads((Path(load_config().app_dir) / "app.json").read_text())
    assert about["config"] == str(config)
