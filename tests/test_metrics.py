"""_metrics.py: each run's figures through OpenTelemetry's API (the real SDK's in-memory reader),
served for Prometheus (a real scrape of a real run), and nothing at all without OpenTelemetry."""

from __future__ import annotations

import importlib
import json
import socket
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families

import sched_accel
from sched_accel import ConfigError, _metrics, load_config
from sched_accel._policy import Hosts, RunStats
from sched_accel._settings import HostSettings, MetricsSettings, listen_address

from .conftest import App
from .faultserver import FaultServer

#: A prefetch run's line, as ``RunReport.finish`` makes it (the numbers are numbers).
FIELDS: dict[str, Any] = {
    "target": "jobs:update",
    "mode": "prefetch",
    "outcome": "ok",
    "items": 70,
    "ok": 70,
    "failed": 0,
    "seconds": 1.85,
    "concurrency": 8,
    "prefetch": "http",
    "prefetched": 68,
    "missed": 2,
    "wasted": 1,
    "retried": 1,
    "retries": 2,
    "gave_up": 0,
    "lost": 0,
    "requests": 73,
    "http_429": 3,
    "http_503": 0,
    "timeouts": 0,
    "peak_requests": 8,
    "limit_wait": 0.25,
    "effective_concurrency": 6.5,
    "speedup": 5.8,
}
TARGET = {"sched_accel.target": "jobs:update"}
#: A loop and its replacement (replace mode: no upstream needed), and their config.
JOBS = "def update(tokens):\n    return [t * 2 for t in tokens]\n"
CONFIG = '[[targets]]\nloop = "jobs:update"\nreplacement = "accel:update"\n'


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    """The real SDK's in-memory reader on a MeterProvider that the runs are recorded to."""
    memory = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[memory])
    with _metrics.recording_to(provider):
        yield memory
    provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, tuple[str, dict[frozenset[tuple[str, Any]], Any]]]:
    """The reader's data points of our scope: by instrument, its unit and its points by attributes."""
    found: dict[str, tuple[str, dict[frozenset[tuple[str, Any]], Any]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            if scope.scope.name != _metrics.SCOPE:
                continue
            for metric in scope.metrics:
                found[metric.name] = (
                    metric.unit or "",
                    {frozenset((p.attributes or {}).items()): p for p in metric.data.data_points},
                )
    return found


def value(found: dict[str, tuple[str, dict[frozenset[tuple[str, Any]], Any]]], name: str, **attributes: Any) -> Any:
    """The value of the one point of ``name`` with exactly these attributes (dots written as ``__``)."""
    point = found[name][1][frozenset((key.replace("__", "."), v) for key, v in attributes.items())]
    return point.value


def answer(state: Any, status: int, *, live: bool = False) -> None:
    """A real httpx answer of ``status`` to a request of ``state``'s host, as ``Policy.request`` hands it over."""
    state.answered(httpx.Response(status), False, 1, RunStats(), live=live)


def free_port() -> int:
    """A loopback port nobody listens on (closed at once: the endpoint binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the figures, through the real SDK's reader --------------------------------------------------
def test_a_run_s_figures_and_its_hosts_reach_the_meter_provider(reader: InMemoryMetricReader) -> None:
    """Runs, duration, items by outcome, retries, 429s, waits, the gauges, requests by host, class
    and source, and each host's rate with where it comes from: names, units and attributes."""
    hosts = Hosts(
        {"api.test": HostSettings(per_second=20.0), "pay.test:8443": HostSettings(concurrency=2)},
        learned={"told.test": (10.0, "told"), "slow.test": (4.0, "learned")},
    )
    api = hosts.get("api.test")
    for status in (200, 200, 200, 429):
        answer(api, status)
    answer(api, 200, live=True)
    answer(api, 404, live=True)
    api.raised(httpx.ConnectError("refused"), False, RunStats())
    answer(hosts.get("pay.test", 8443), 503)
    hosts.get("told.test")
    hosts.get("slow.test")

    _metrics.record_run(FIELDS, hosts)
    found = points(reader)

    run = {**TARGET, "sched_accel.mode": "prefetch", "sched_accel.outcome": "ok"}
    assert found["sched_accel.runs"][0] == "{run}" and value(found, "sched_accel.runs", **_(run)) == 1
    duration = found["sched_accel.run.duration"][1][frozenset(run.items())]
    assert found["sched_accel.run.duration"][0] == "s"
    assert (duration.count, duration.sum, duration.explicit_bounds) == (1, 1.85, _metrics.DURATION_BUCKETS)
    assert found["sched_accel.items"][0] == "{item}"
    assert {
        o: value(found, "sched_accel.items", **_(TARGET), sched_accel__item__outcome=o) for o in _metrics.ITEM_OUTCOMES
    } == {
        "prefetched": 68,
        "missed": 2,
        "wasted": 1,
        "lost": 0,
    }
    assert value(found, "sched_accel.retries", **_(TARGET)) == 2 and found["sched_accel.retries"][0] == "{retry}"
    assert value(found, "sched_accel.rate_limited", **_(TARGET)) == 3
    assert (
        found["sched_accel.limit.wait_time"][0] == "s"
        and value(found, "sched_accel.limit.wait_time", **_(TARGET)) == 0.25
    )
    assert value(found, "sched_accel.run.effective_concurrency", **_(TARGET)) == 6.5
    assert value(found, "sched_accel.run.speedup", **_(TARGET)) == 5.8

    unit, requests = found["sched_accel.requests"]
    assert unit == "{request}"
    assert {tuple(sorted(attributes)): point.value for attributes, point in requests.items()} == {
        (
            ("sched_accel.http.status_class", "2xx"),
            ("sched_accel.request.source", "ahead"),
            ("server.address", "api.test"),
        ): 3,
        (
            ("sched_accel.http.status_class", "4xx"),
            ("sched_accel.request.source", "ahead"),
            ("server.address", "api.test"),
        ): 1,
        (
            ("sched_accel.http.status_class", "2xx"),
            ("sched_accel.request.source", "live"),
            ("server.address", "api.test"),
        ): 1,
        (
            ("sched_accel.http.status_class", "4xx"),
            ("sched_accel.request.source", "live"),
            ("server.address", "api.test"),
        ): 1,
        (
            ("sched_accel.http.status_class", "error"),
            ("sched_accel.request.source", "ahead"),
            ("server.address", "api.test"),
        ): 1,
        (
            ("sched_accel.http.status_class", "5xx"),
            ("sched_accel.request.source", "ahead"),
            ("server.address", "pay.test"),
            ("server.port", 8443),
        ): 1,
    }
    unit, rates = found["sched_accel.host.rate"]
    assert unit == "{request}/s"
    assert {tuple(sorted(attributes)): point.value for attributes, point in rates.items()} == {
        (("sched_accel.rate.source", "declared"), ("server.address", "api.test")): 20.0,
        (("sched_accel.rate.source", "told"), ("server.address", "told.test")): 10.0,
        (("sched_accel.rate.source", "learned"), ("server.address", "slow.test")): pytest.approx(4.0, rel=0.5),
    }


def _(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes as :func:`value`'s keywords."""
    return {key.replace(".", "__"): v for key, v in attributes.items()}


def test_each_run_adds_what_its_hosts_answered_since_the_last(reader: InMemoryMetricReader) -> None:
    """The hosts are the process's, shared by runs: a run records only the answers added since the
    last run recorded, so the counters add up to what was sent; a run without figures counts as a run."""
    hosts = Hosts()
    state = hosts.get("api.test")
    answer(state, 200)
    _metrics.record_run(FIELDS, hosts)
    answer(state, 200)
    answer(state, 200, live=True)
    _metrics.record_run({"target": "jobs:update", "mode": "replace", "outcome": "fallback", "items": None}, hosts)
    _metrics.record_run({**FIELDS, "outcome": "raised"}, hosts)  # nothing new answered
    found = points(reader)
    ahead = value(
        found,
        "sched_accel.requests",
        server__address="api.test",
        sched_accel__http__status_class="2xx",
        sched_accel__request__source="ahead",
    )
    live = value(
        found,
        "sched_accel.requests",
        server__address="api.test",
        sched_accel__http__status_class="2xx",
        sched_accel__request__source="live",
    )
    assert (ahead, live) == (2, 1)
    assert (
        value(found, "sched_accel.runs", **_(TARGET), sched_accel__mode="replace", sched_accel__outcome="fallback") == 1
    )
    assert (
        value(found, "sched_accel.runs", **_(TARGET), sched_accel__mode="prefetch", sched_accel__outcome="raised") == 1
    )
    assert value(found, "sched_accel.items", **_(TARGET), sched_accel__item__outcome="prefetched") == 2 * 68


def test_a_failure_inside_is_said_once_and_metrics_stay_off(
    reader: InMemoryMetricReader, capture_events: list[str]
) -> None:
    """record_run never raises: a failure of ours is one internal_error line, then nothing more is
    recorded in this process (and nothing more is said)."""

    class Broken(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            if key == "seconds":
                raise RuntimeError("a field that cannot be read")
            return super().get(key, default)

    _metrics.record_run(Broken(FIELDS), Hosts())
    _metrics.record_run(Broken(FIELDS), Hosts())
    _metrics.record_run(FIELDS, Hosts())
    [line] = [line for line in capture_events if "internal_error" in line]
    assert "recording the metrics of jobs:update (metrics are off in this process from now on)" in line
    assert "RuntimeError: a field that cannot be read" in line
    assert (
        value(points(reader), "sched_accel.runs", **_(TARGET), sched_accel__mode="prefetch", sched_accel__outcome="ok")
        == 1
    )


def test_the_app_s_global_provider_receives_them(app: App, unmeasured_children: None) -> None:
    """Recorded to ``get_meter("sched_accel")`` of the global provider: whatever provider the app
    set up (here the real SDK's, with its in-memory reader) receives the figures."""
    app.write(
        "probe.py",
        """
        import json
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

        from sched_accel import _metrics

        _metrics.record_run({"target": "jobs:update", "mode": "prefetch", "outcome": "ok", "seconds": 0.5, "prefetched": 3}, None)
        data = reader.get_metrics_data()
        print(json.dumps(sorted(
            (m.name, p.value) for r in data.resource_metrics for s in r.scope_metrics if s.scope.name == "sched_accel"
            for m in s.metrics if m.name in ("sched_accel.runs", "sched_accel.items") for p in m.data.data_points
            if p.attributes.get("sched_accel.item.outcome", "prefetched") == "prefetched"
        )))
    """,
    )
    out = app.run("probe.py")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [["sched_accel.items", 3], ["sched_accel.runs", 1]]


# -- served for Prometheus: a real run, a real scrape -------------------------------------------
JOB = """
    import httpx

    def refresh(tokens, base):
        values = []
        with httpx.Client() as client:
            for token in tokens:
                values.append(client.get(f"{base}/item/{token}").json().get("value"))
        return values
"""


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a Prometheus scrape, parsed by prometheus-client's own parser."""
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def total(scraped: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(v for n, found, v in scraped if n == name and labels.items() <= found.items())


@pytest.mark.slow
def test_a_scrape_of_the_endpoint_shows_the_run(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """``[metrics] prometheus``: a real patched loop against a real upstream, then a real scrape of
    /metrics shows its run, its items, every request by host, class and source, and the host's rate."""
    port = free_port()
    app.write("job.py", JOB)
    app.config(f"""
        [metrics]
        prometheus = "127.0.0.1:{port}"

        [hosts."127.0.0.1"]
        per_second = 1000
        burst = 50

        [[targets]]
        loop = "job:refresh"
        items = "tokens"
        concurrency = 6
    """)
    module: Any = importlib.import_module("job")
    tokens = [f"t{i}" for i in range(30)]
    with FaultServer(latency=0.02, faults={"t9": ["500"]}) as upstream:
        monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "true")
        assert sched_accel.install() is True
        values = module.refresh(tokens, upstream.url)
        sent = sum(1 for method, _ in upstream.log if method == "GET")
    assert values[9] is None and len(values) == 30  # the 500's answer reached the loop as it was
    assert f"sched_accel.metrics_served address=127.0.0.1:{port} - " in "\n".join(capture_events)

    scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert scrape.status_code == 200
    scraped = samples(scrape.text)
    target = {"sched_accel_target": "job:refresh"}
    assert (
        total(scraped, "sched_accel_runs_total", **target, sched_accel_outcome="ok", sched_accel_mode="prefetch") == 1
    )
    assert total(scraped, "sched_accel_run_duration_seconds_count", **target) == 1
    prefetched = total(scraped, "sched_accel_items_total", **target, sched_accel_item_outcome="prefetched")
    missed = total(scraped, "sched_accel_items_total", **target, sched_accel_item_outcome="missed")
    assert prefetched + missed == 30 and prefetched > 0
    host = {"server_address": "127.0.0.1"}
    assert total(scraped, "sched_accel_requests_total", **host) == sent  # every GET the upstream saw
    assert total(scraped, "sched_accel_requests_total", **host, sched_accel_http_status_class="5xx") == 1
    wasted = total(scraped, "sched_accel_items_total", **target, sched_accel_item_outcome="wasted")
    # the loop sent the requests of the items it missed itself; the others went ahead (served, or wasted)
    assert total(scraped, "sched_accel_requests_total", **host, sched_accel_request_source="live") == missed > 0
    assert (
        total(scraped, "sched_accel_requests_total", **host, sched_accel_request_source="ahead") == prefetched + wasted
    )
    assert total(scraped, "sched_accel_host_rate_per_second", **host, sched_accel_rate_source="declared") == 1000


def test_an_address_in_use_is_one_line_and_the_app_runs_on(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Binding fails (another process holds the port): one metrics_not_served line that says what
    to do, and the install and the loop go on as without metrics."""
    app.write("jobs.py", JOBS)
    app.write("accel.py", JOBS)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        app.config(f'[metrics]\nprometheus = "127.0.0.1:{port}"\n\n{CONFIG}')
        module: Any = importlib.import_module("jobs")
        monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
        assert sched_accel.install() is True
        assert module.update([1, 2]) == [2, 4]
        assert sched_accel.patched_targets() == ["jobs:update"]
    [line] = [line for line in capture_events if line.startswith("sched_accel.metrics_not_served")]
    assert f"address=127.0.0.1:{port} - could not listen at 127.0.0.1:{port} (Address already in use)" in line
    assert "choose a free port in [metrics] prometheus; the app runs on, without the endpoint" in line
    assert _metrics.served_address() is None


def test_a_second_install_keeps_the_endpoint(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """Uninstalled and installed again (the same config): the endpoint stays, bound once."""
    port = free_port()
    app.write("jobs.py", JOBS)
    app.write("accel.py", JOBS)
    app.config(f'[metrics]\nprometheus = "127.0.0.1:{port}"\n\n{CONFIG}')
    monkeypatch.setenv("ENABLE_SCHEDULER_OPTIMIZATION", "1")
    assert sched_accel.install() is True
    sched_accel.uninstall()
    assert sched_accel.install() is True
    assert _metrics.served_address() == ("127.0.0.1", port)
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200
    assert [line.split(" ")[0] for line in capture_events if "metrics_" in line] == ["sched_accel.metrics_served"]


# -- nothing without OpenTelemetry, nothing at start-up -----------------------------------------
RUN_AND_LIST = """
    import json
    import sys
    {block}
    import jobs
    from sched_accel import _metrics
    from sched_accel._policy import Hosts

    print(jobs.update([1, 2, 3]))
    _metrics.record_run({{"target": "jobs:update", "mode": "replace", "outcome": "ok", "seconds": 0.1}}, Hosts())
    print(json.dumps(sorted(m for m, v in sys.modules.items() if m.startswith(("opentelemetry", "prometheus_client")) and v)))
"""


def test_without_opentelemetry_nothing_happens_and_nothing_is_imported(app: App, unmeasured_children: None) -> None:
    """OpenTelemetry absent: the endpoint asked for is one line with the pip command, the run goes
    on, record_run does nothing, and no module of OpenTelemetry or prometheus-client is loaded."""
    port = free_port()
    app.write("jobs.py", JOBS)
    app.write("accel.py", JOBS)
    app.write("main.py", RUN_AND_LIST.format(block='sys.modules["opentelemetry"] = None  # not installed'))
    config = app.config(f'[metrics]\nprometheus = "127.0.0.1:{port}"\n\n{CONFIG}')
    out = app.run("main.py", env={"ENABLE_SCHEDULER_OPTIMIZATION": "1", "SCHED_ACCEL_CONFIG": str(config)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[2, 4, 6]", "[]"]
    [line] = [line for line in out.stderr.splitlines() if "sched_accel.metrics_" in line]
    assert "sched_accel.metrics_not_served address=127.0.0.1:" in line
    assert "OpenTelemetry's SDK and Prometheus exporter are not installed (no module opentelemetry" in line
    assert "pip install 'sched-accel[otel]'; the app runs on, without the endpoint" in line
    assert "internal_error" not in out.stderr


@pytest.mark.parametrize("flag", ["0", "1"])
def test_start_up_and_a_run_import_no_opentelemetry(app: App, unmeasured_children: None, flag: str) -> None:
    """Flag off, or on without [metrics]: OpenTelemetry is installed here, yet neither the start-up
    nor a run (recorded) imports it, since the app never loaded it: no provider could receive them."""
    app.write("jobs.py", JOBS)
    app.write("accel.py", JOBS)
    app.write("main.py", RUN_AND_LIST.format(block=""))
    config = app.config(CONFIG)
    out = app.run("main.py", env={"ENABLE_SCHEDULER_OPTIMIZATION": flag, "SCHED_ACCEL_CONFIG": str(config)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[2, 4, 6]", "[]"]
    assert "metrics" not in out.stderr


# -- the [metrics] table -------------------------------------------------------------------------
def load(tmp_path: Path, source: str) -> MetricsSettings:
    """The [metrics] settings of a standalone config holding ``source``."""
    path = tmp_path / "sched_accel.toml"
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return load_config(path).metrics


def test_metrics_are_not_served_by_default(tmp_path: Path) -> None:
    """No [metrics]: no endpoint of ours."""
    assert load(tmp_path, "") == MetricsSettings() and MetricsSettings().address is None


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:9464", ("::1", 9464)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ],
)
def test_prometheus_names_where_to_listen(tmp_path: Path, text: str, address: tuple[str, int]) -> None:
    """``prometheus = "HOST:PORT"`` (an IPv6 host in brackets)."""
    assert load(tmp_path, f'[metrics]\nprometheus = "{text}"\n').address == address


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            '[metrics]\nprometheus = "9464"\n',
            """metrics.prometheus = '9464' is not allowed: "HOST:PORT" where this process serves""",
        ),
        ('[metrics]\nprometheus = "127.0.0.1:0"\n', "the port: a whole number from 1 to 65,535"),
        ('[metrics]\nprometheus = "http://127.0.0.1:9464/metrics"\n', 'e.g. "127.0.0.1:9464"'),
        ('[metrics]\nprometheus = "::1:9464"\n', 'an IPv6 host in brackets: "[::1]:9464"'),
        ("[metrics]\nprometheus = 9464\n", "metrics.prometheus = 9464 is not allowed"),
        ('[metrics]\npromethus = "127.0.0.1:9464"\n', "unknown key metrics.promethus; the keys here are prometheus"),
        ("metrics = 1\n", "metrics = 1 is not allowed: a table [metrics] of prometheus"),
    ],
)
def test_what_is_refused_names_the_key_and_the_fix(tmp_path: Path, source: str, message: str) -> None:
    """Each refusal is a config error naming the key and what to write."""
    path = tmp_path / "sched_accel.toml"
    path.write_text(source, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)


def test_settings_check_the_address_themselves() -> None:
    """MetricsSettings built by a program is checked as the config's is."""
    with pytest.raises(ValueError, match=r"metrics.prometheus = 'nowhere' is not allowed"):
        MetricsSettings(prometheus="nowhere")
    assert listen_address("[::1]:80") == ("::1", 80) and listen_address("[]:80") is None and listen_address(80) is None
