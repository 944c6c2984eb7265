"""Items from a Django queryset (issue 20, item 12): ``items = "returned-by:weather.models:
City.objects.all"`` resolves to ``all`` on the manager's class, for City's manager only, and the
run reads its items from the rows the loop's own iteration fetched: no query is added.

A minimal project written here (a settings module, SQLite in a temp folder, a City model and a
management command whose ``handle()`` GETs each city's forecast and saves a row with the ORM)
runs in real processes, ``python manage.py refresh_weather``, flag off and on through the
start-up hook; both leave the same rows in the same order, make the same SQL queries and send
each GET once."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ENV_KEYS
from .faultserver import FaultServer

pytest.importorskip("django", reason="Django is not installed: `pip install django` to run these tests")

#: Their child pythons must run as in production, without a tracer (see conftest).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("unmeasured_children")]

PROJECT = {
    "manage.py": """
        import os
        import sys

        if __name__ == "__main__":
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weather_site.settings")
            from django.core.management import execute_from_command_line

            execute_from_command_line(sys.argv)
    """,
    "weather_site/__init__.py": "",
    "weather_site/settings.py": """
        import os

        SECRET_KEY = "test-only-not-secret"
        INSTALLED_APPS = ["weather"]
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["WEATHER_DB"]}}
        USE_TZ = True
        DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
    """,
    "weather/__init__.py": "",
    "weather/models.py": """
        from django.db import models


        class City(models.Model):
            name = models.CharField(max_length=50)

            class Meta:
                ordering = ["id"]


        class Station(models.Model):
            code = models.CharField(max_length=10)


        class Reading(models.Model):
            city = models.ForeignKey(City, on_delete=models.CASCADE)
            value = models.IntegerField()
    """,
    "weather/fetch.py": """
        import os

        import requests

        from .models import Reading

        API = os.environ["WEATHER_API"]


        def forecast(city):
            value = requests.get(f"{API}/item/{city.name}", timeout=10).json()["value"]
            Reading.objects.create(city=city, value=value)
            return value
    """,
    "weather/management/__init__.py": "",
    "weather/management/commands/__init__.py": "",
    "weather/management/commands/seed_weather.py": """
        from django.core.management.base import BaseCommand

        from weather.models import City, Station


        class Command(BaseCommand):
            def handle(self, *args, **options):
                City.objects.bulk_create(City(name=f"city{n:02d}") for n in range(12))
                Station.objects.bulk_create(Station(code=f"st{n}") for n in range(3))
    """,
    # Every query of the command's connection is printed: the same ones must run, flag off or on.
    "weather/management/commands/refresh_weather.py": """
        from django.core.management.base import BaseCommand
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from weather.fetch import forecast
        from weather.models import City, Station


        class Command(BaseCommand):
            def handle(self, *args, **options):
                with CaptureQueriesContext(connection) as queries:
                    stations = [station.code for station in Station.objects.all()]  # another model's all()
                    for city in City.objects.all():
                        self.stdout.write(f"{city.name} {forecast(city)}")
                self.stdout.write(f"stations {' '.join(stations)}")
                self.stdout.write(f"queries {len(queries)}")
                for query in queries:
                    self.stdout.write(query["sql"])
    """,
}
LOOP = "weather.management.commands.refresh_weather:Command.handle"
ITEMS = "returned-by:weather.models:City.objects.all"
CONFIGS = {
    # the per-item function declared: shadows run it ahead, its ORM write stopped in them
    "shadow": f'[[targets]]\nloop = "{LOOP}"\nitems = "{ITEMS}"\nfetch = "weather.fetch:forecast"\nconcurrency = 8\n',
    # nothing but the items: the loop's GETs are sent ahead
    "http": f'[[targets]]\nloop = "{LOOP}"\nitems = "{ITEMS}"\nconcurrency = 8\n',
}
CITIES = [f"city{n:02d}" for n in range(12)]
_RUN = re.compile(r"sched_accel\.run target=(\S+) .*")
_FIELD = re.compile(r"(\w+)=(\S+)")


@dataclass(frozen=True)
class Ran:
    """What one run of the command left: its output, our lines, the rows, the GETs' counts."""

    returncode: int
    stdout: str
    ours: list[str]
    rows: list[tuple[object, ...]]
    requests: Counter[str]
    peak: int


def environment(project: Path, db: Path, api: str, config: str | None) -> dict[str, str]:
    """This process's environment without our variables, the flag on when ``config`` is named."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and not k.startswith("COVERAGE_")}
    env.update(
        {"WEATHER_DB": str(db), "WEATHER_API": api, "SCHED_ACCEL_CONTROL": str(project / "state" / "control.json")}
    )
    if config is not None:
        env.update({"ENABLE_SCHEDULER_OPTIMIZATION": "true", "SCHED_ACCEL_CONFIG": str(project / config)})
    return env


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, its configs, and a database made once (``template.sqlite3``): 12 cities, 3 stations."""
    root = tmp_path_factory.mktemp("django-weather")
    for relative, source in PROJECT.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    for name, config in CONFIGS.items():
        (root / f"sched_accel.{name}.toml").write_text(config, encoding="utf-8")
    env = environment(root, root / "template.sqlite3", "http://127.0.0.1:9", None)
    for command in (("migrate", "--run-syncdb", "-v", "0"), ("seed_weather",)):
        done = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=root, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    return root


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    """The weather API: each GET answered after 50 ms, counted per city."""
    with FaultServer(latency=0.05) as upstream:
        yield upstream


def refresh(project: Path, server: FaultServer, config: str | None, name: str) -> Ran:
    """``python manage.py refresh_weather`` on a copy of the template database, flag on when ``config``."""
    db = project / f"{name}.sqlite3"
    shutil.copyfile(project / "template.sqlite3", db)
    server.reset_counts()
    done = subprocess.run(
        [sys.executable, "manage.py", "refresh_weather"],
        cwd=project,
        env=environment(project, db, server.url, config),
        capture_output=True,
        text=True,
        timeout=60,
    )
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT * FROM weather_reading ORDER BY rowid").fetchall()
    ours = [line[line.index("sched_accel.") :] for line in done.stderr.splitlines() if "sched_accel." in line]
    return Ran(done.returncode, done.stdout, ours, rows, Counter(server.requests), server.peak)


@pytest.fixture(scope="module")
def sequential(project: Path, server: FaultServer) -> Ran:
    """The command run once with the flag off: what every accelerated run must leave."""
    ran = refresh(project, server, None, "off")
    assert ran.returncode == 0, ran.stdout
    assert ran.ours == []
    return ran


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_a_command_over_a_queryset_is_accelerated_and_identical(
    project: Path, server: FaultServer, sequential: Ran, config: str
) -> None:
    """Flag on: same output, rows and SQL queries as flag off, each GET once, and the GETs overlapped."""
    accelerated = refresh(project, server, f"sched_accel.{config}.toml", config)
    assert accelerated.returncode == 0, accelerated.ours
    assert accelerated.stdout == sequential.stdout  # the city lines, and every SQL query, in order
    assert "queries 14" in sequential.stdout  # stations, cities (once), 12 inserts
    assert accelerated.rows == sequential.rows and len(sequential.rows) == 12
    assert accelerated.requests == sequential.requests == Counter(CITIES)  # each GET once
    assert not [
        line for line in accelerated.ours if line.startswith(("sched_accel.items_", "sched_accel.internal_error"))
    ]
    [run] = [line for line in accelerated.ours if line.startswith("sched_accel.run ")]
    fields = dict(_FIELD.findall(run))
    assert fields["target"] == LOOP and fields["prefetch"] == config, run
    assert int(fields["prefetched"]) >= 8, run  # the items were the cities: their calls were sent ahead
    assert sequential.peak == 1 and accelerated.peak > 1


RESOLVE = f"""
import sched_accel
from sched_accel import TargetSpec
from sched_accel._patching import Guarded, is_ours
from weather import models

resolved = TargetSpec.parse("{ITEMS.removeprefix("returned-by:")}", role="items").resolve(models)
guard = resolved.owner
assert isinstance(guard, Guarded), guard
manager = type(models.City.objects)
print(guard.owner is manager, resolved.attribute, resolved.kind)
print(guard.applies(models.City.objects), guard.applies(models.City._default_manager))
print(guard.applies(models.Station.objects), guard.applies(models.City.objects.all()))
print(resolved.described)
assert "all" not in vars(manager)
assert sched_accel.install()
import {LOOP.partition(":")[0]}
print(is_ours(vars(manager)["all"]), [s.code for s in models.Station.objects.all()])
sched_accel.uninstall()
print("all" in vars(manager))
"""


def test_the_items_call_is_the_models_managers_all_and_no_other(project: Path) -> None:
    """City.objects.all resolves on the manager's class, for City's manager only, and uninstall takes it off."""
    env = environment(project, project / "template.sqlite3", "http://127.0.0.1:9", "sched_accel.http.toml")
    env["DJANGO_SETTINGS_MODULE"] = "weather_site.settings"
    script = "import django\ndjango.setup()\n" + RESOLVE
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "True all method",
        "True True",
        "False False",
        "method of the manager City.objects (on Manager, for that manager's calls only)",
        "True ['st0', 'st1', 'st2']",
        "False",
    ]


def test_check_sets_django_up_to_resolve_a_projects_targets(project: Path) -> None:
    """``sched-accel check`` in a Django project (its settings named, as manage.py names them)
    resolves the command, the per-item function and the manager's ``all``, instead of
    ``AppRegistryNotReady`` for every target."""
    env = environment(project, project / "template.sqlite3", "http://127.0.0.1:9", None)
    env["DJANGO_SETTINGS_MODULE"] = "weather_site.settings"
    done = subprocess.run(
        [sys.executable, "-m", "sched_accel", "--config", "sched_accel.shadow.toml", "check"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "AppRegistryNotReady" not in done.stdout
    assert " problem " not in done.stdout
