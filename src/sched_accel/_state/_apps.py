"""Each app's own state: ``<state folder>/apps/<app>/``, so two apps of one user share none.

The state folder is the user's: the folder of ``$SCHED_ACCEL_CONTROL`` when it is set, else
``$XDG_STATE_HOME/sched_accel``, else ``~/.local/state/sched_accel``. A config never moves it.

An app is what its config names, by the rule the coordination namespace follows: its
``[coordination] namespace`` when set, else the config file's absolute path (as written, not
resolved: a deploy that swaps a ``current`` symlink keeps its app and its switches). Processes
that coordinate therefore share one app's state, and nothing else does. Its folder,
``apps/<label>-<hash>`` (the label, from the namespace or the config's folder, is for people;
the hash of the rule's text is the identity), holds:

- ``control.json``: this app's control file (``sched-accel off|on [TARGET]`` run with its config);
- ``runs/``: each target's last run (``sched-accel status``);
- ``learned/``: the learned per-item calls and the secret that signs them;
- ``hosts.json``: the rates hosts told or taught the last runs;
- ``app.json``: which config (and namespace) the folder is for, for people and
  ``sched-accel status --all-apps`` (written at start when it is missing or says otherwise).

The state folder itself holds the user-wide control file (``control.json``, the path
``$SCHED_ACCEL_CONTROL`` names: ``sched-accel off --all-apps``, read by every app too) and the
machine backend's store (``coord/``, whose keys are per app already). Runs, learned calls and
``hosts.json`` left directly in it by a version before state was per app are not read
(:func:`old_state` names them, for ``status``).

A config's ``control_file`` may only name a file directly in the state folder, other than the
user-wide ``control.json`` (:func:`control_file_problem`): state is never written where a config
chose, outside the folder its owner gave.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from ._files import write_private
from ._trust import Refused, read_trusted

__all__ = ["APPS", "AppState", "app_id", "control_file_problem", "known_apps", "old_state"]

#: The folder of the apps' folders, in the state folder.
APPS = "apps"
#: The user-wide control file's name in the state folder (the default ``$SCHED_ACCEL_CONTROL``).
USER_CONTROL = "control.json"
_ABOUT = "app.json"
_MAX_BYTES = 64 * 1024
#: What a version before per-app state left directly in the state folder.
_OLD = ("runs", "learned", "hosts.json")


def app_id(namespace: str | None, config: str | None) -> str:
    """The name of an app's folder: a label for people, then the hash that identifies it
    (``default`` for settings made without a config path or namespace)."""
    text = namespace or config or ""
    if not text:
        return "default"
    label = namespace if namespace else os.path.basename(os.path.dirname(text))
    label = re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_")[:32] or "app"
    return f"{label}-{hashlib.blake2b(text.encode(), digest_size=8).hexdigest()}"


def control_file_problem(path: str, state_dir: str) -> str | None:
    """Why a config's ``control_file`` (absolute) may not be used, or None: it must be a file
    directly in the state folder, not the user-wide control file."""
    path, state_dir = os.path.normpath(path), os.path.normpath(state_dir)
    if os.path.dirname(path) != state_dir:
        return (
            f"it is not in the state folder {state_dir}, and state is kept only there (the folder of "
            "$SCHED_ACCEL_CONTROL, else $XDG_STATE_HOME/sched_accel); remove the key (this app's control file "
            f"is then {os.path.join(state_dir, APPS, '<app>', 'control.json')}), or name a file in that folder"
        )
    if os.path.basename(path) == USER_CONTROL:
        return (
            "it is the user-wide control file, which switches every app of this user "
            "(sched-accel off --all-apps); remove the key, or name another file in that folder"
        )
    return None


@dataclass(frozen=True, slots=True)
class AppState:
    """Where one app's state lives in the user's state folder ``state_dir``."""

    state_dir: str
    config: str | None
    namespace: str | None = None
    control_file: str | None = None  # a config's own control_file, checked by control_file_problem

    @property
    def id(self) -> str:
        return app_id(self.namespace, self.config)

    @property
    def folder(self) -> str:
        """The app's folder: runs, learned calls, ``hosts.json``, ``app.json``."""
        return os.path.join(self.state_dir, APPS, self.id)

    @property
    def control(self) -> str:
        """This app's control file: the config's ``control_file``, else ``control.json`` in its folder."""
        return self.control_file or os.path.join(self.folder, "control.json")

    def about(self) -> dict[str, Any]:
        """What ``app.json`` says of this app."""
        return {
            "version": 1,
            "id": self.id,
            "config": self.config,
            "namespace": self.namespace,
            "control": self.control,
        }

    def describe(self) -> None:
        """Write ``app.json`` when it is missing or says otherwise; never raises (it is for
        people: a folder that cannot be written is said by the state that needs it)."""
        path = os.path.join(self.folder, _ABOUT)
        about = self.about()
        try:
            if _read(path) == about:
                return
            write_private(path, json.dumps(about, indent=2) + "\n")
        except (OSError, ValueError):  # Refused is an OSError
            pass


def _read(path: str) -> dict[str, Any] | None:
    """An ``app.json``'s content; None when missing or not ours; Refused when untrusted."""
    raw = read_trusted(path, limit=_MAX_BYTES)
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get("version") == 1 else None


def known_apps(state_dir: str, refused: list[str] | None = None) -> list[dict[str, Any]]:
    """Every app folder in the state folder with what its ``app.json`` says (``config`` None
    when it has none): for ``sched-accel status --all-apps``. A refused ``app.json`` is
    appended to ``refused`` and its app listed without it."""
    folder = os.path.join(state_dir, APPS)
    try:
        names = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    except OSError:
        return []
    apps: list[dict[str, Any]] = []
    for name in names:
        if not os.path.isdir(os.path.join(folder, name)):
            continue
        try:
            about = _read(os.path.join(folder, name, _ABOUT)) or {}
        except Refused as exc:
            if refused is not None:
                refused.append(str(exc))
            about = {}
        config, namespace, control = (about.get(key) for key in ("config", "namespace", "control"))
        if not (isinstance(control, str) and control_file_problem(control, state_dir) is None):
            control = os.path.join(folder, name, "control.json")  # the default: never a path from elsewhere
        apps.append(
            {
                "id": name,
                "folder": os.path.join(folder, name),
                "config": config if isinstance(config, str) else None,
                "namespace": namespace if isinstance(namespace, str) else None,
                "control": control,
            }
        )
    return apps


def old_state(state_dir: str) -> list[str]:
    """What a version before per-app state left directly in the state folder (no longer read)."""
    return [name for name in _OLD if os.path.lexists(os.path.join(state_dir, name))]
