"""The Django ORM (on SQLite, in a fresh interpreter: Django's settings are process-wide):
a shadow's reads go on; ``create``, ``update_or_create`` and leaving ``atomic()`` stop it,
and nothing it tried is in the table."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("django")

JOB = """
import json, sys, threading

import django
from django.conf import settings

settings.configure(DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}}, USE_TZ=True)
django.setup()
from django.db import connection, connections, models, transaction

from sched_accel._shadow import Shadow, Stopped, activate, shadowed

activate()


class City(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "shadowtest"


with connection.schema_editor() as editor:
    editor.create_model(City)
City.objects.create(name="first")


def atomic_read():
    with transaction.atomic():
        return City.objects.count()


JOBS = {
    "read": lambda: list(City.objects.values_list("name", flat=True)),
    "create": lambda: City.objects.create(name="shadow").pk,
    "update_or_create": lambda: City.objects.update_or_create(name="first", defaults={"name": "x"})[0].pk,
    "raw": lambda: connection.cursor().execute("DELETE FROM shadowtest_city"),
    "atomic_read": atomic_read,
}
results = {}


def run(name):
    shadow = Shadow()
    with shadowed(shadow):
        try:
            results[name] = ["ok", JOBS[name](), shadow.stopped]
        except Stopped as exc:
            results[name] = ["stopped", exc.why, shadow.stopped]
        except Exception as exc:  # the app's own finally turned it into its error: still stopped
            results[name] = ["error", type(exc).__name__, shadow.stopped]
    connections.close_all()


for name in JOBS:
    thread = threading.Thread(target=run, args=(name,))
    thread.start()
    thread.join()
City.objects.create(name="main")
results["rows"] = list(City.objects.order_by("id").values_list("name", flat=True))
print(json.dumps(results))
"""


def test_django_orm_writes_stop_the_shadow_and_reads_go_on(tmp_path: Path) -> None:
    """Reads go on; create, update_or_create, a raw DELETE and a commit stop; the table holds
    the app's rows only."""
    (tmp_path / "job.py").write_text(textwrap.dedent(JOB))
    done = subprocess.run(
        [sys.executable, "job.py", str(tmp_path / "app.db")], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["read"] == ["ok", ["first"], None]
    assert results["create"][0] == "stopped"
    assert results["create"][1].startswith("a database write through the Django ORM: INSERT INTO")
    line = 1 + next(i for i, text in enumerate(textwrap.dedent(JOB).splitlines()) if '"create"' in text)
    assert results["create"][1].endswith(f"(job.py:{line})")
    assert results["update_or_create"][0] == "stopped" and "UPDATE" in results["update_or_create"][1]
    assert results["raw"][0] == "stopped" and "DELETE FROM shadowtest_city" in results["raw"][1]
    # leaving atomic() would commit: it is left as if it had raised (Django rolls back), then stops
    assert results["atomic_read"][0] == "stopped"
    assert results["atomic_read"][1].startswith("committed through the Django ORM (job.py:")
    assert results["rows"] == ["first", "main"]
