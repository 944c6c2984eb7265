"""Metrics: each run's figures through OpenTelemetry's API, and served for Prometheus when asked.

The one module that knows OpenTelemetry (``pip install 'sched-accel[otel]'``). Nothing of it is
imported at start-up, nor ever when it is absent:

- **The app's own OpenTelemetry.** At the end of each run (``RunReport.finish`` calls
  :func:`record_run`) the figures go to the instruments of ``get_meter("sched_accel")`` on the
  global MeterProvider, so whatever provider the app set up (its OTLP exporter, its Prometheus
  reader) receives them. A process that never imported ``opentelemetry.metrics`` has no provider
  to receive them: then nothing is imported, and a run costs one dictionary look-up.
- **Our own endpoint.** ``[metrics] prometheus = "127.0.0.1:9464"`` (never on by default) makes
  :func:`serve`, at install, start a private MeterProvider read by OpenTelemetry's
  ``PrometheusMetricReader`` into a registry of its own, served at ``http://HOST:PORT/metrics``
  by prometheus-client's HTTP server (a daemon thread). If the packages are missing or the
  address cannot be bound, one ``sched_accel.metrics_not_served`` line says why and what to do,
  and the app runs on as before.

**Prometheus through OpenTelemetry's exporter, not prometheus-client alone.** Each figure is
declared once, as an OpenTelemetry instrument with its unit; the exporter derives the Prometheus
names from them (``sched_accel.run.duration`` in ``s`` is ``sched_accel_run_duration_seconds``,
counters get ``_total``), so the OpenTelemetry reader and the scrape show the same figures and
cannot drift apart. An app that already serves Prometheus through OpenTelemetry gets ours on its
own endpoint with no config at all. With prometheus-client alone we would keep a second set of
metrics by hand and still need OpenTelemetry for apps that export OTLP. The cost: the SDK and the
exporter (pure Python, about 100 ms to import, paid only when the endpoint is configured), and
prometheus-client, which the exporter needs anyway and whose HTTP server we use to serve it.

The instruments (OpenTelemetry name, unit: attributes; every ``sched_accel.*`` attribute but
the target's is written short here):

- ``sched_accel.runs``, ``{run}``: ``sched_accel.target``, mode, outcome;
- ``sched_accel.run.duration`` (a histogram), ``s``: target, mode, outcome;
- ``sched_accel.items``, ``{item}``: target, ``sched_accel.item.outcome`` (prefetched, missed,
  wasted, lost);
- ``sched_accel.requests``, ``{request}``: ``server.address`` (and ``server.port`` for a host
  declared with its port), ``sched_accel.http.status_class`` (2xx, 3xx, 4xx, 5xx, error),
  ``sched_accel.request.source`` (ahead, live);
- ``sched_accel.retries``, ``{retry}``; ``sched_accel.rate_limited`` (answers of 429),
  ``{response}``; ``sched_accel.limit.wait_time`` (time waited for limits), ``s``: target;
- ``sched_accel.run.effective_concurrency`` and ``sched_accel.run.speedup`` (gauges: the last
  run's, the speed-up when it is known), ``1``: target;
- ``sched_accel.host.rate`` (an observed gauge), ``{request}/s``: ``server.address``,
  ``sched_accel.rate.source`` (declared, told, learned).

Requests are counted by their host where answers are seen (``_policy.HostState.answered``) and
recorded at the end of each run, as what was added since the last one. A status class is ours
(``sched_accel.http.status_class``): OpenTelemetry's ``http.response.status_code`` is the whole
code, an integer. "ahead": sent ahead of the loop (served to it, or wasted); "live": sent by the
loop itself.

:func:`record_run` never raises: a failure of ours is said once (``sched_accel.internal_error``)
and metrics stay off for the rest of the process.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._events import METRICS_NOT_SERVED, METRICS_SERVED
from ._log import event, internal_error

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

    from ._policy import Hosts
    from ._settings import MetricsSettings

__all__ = ["SCOPE", "record_run", "recording_to", "reset", "serve", "served_address"]

#: The instrumentation scope: ``get_meter(SCOPE)``.
SCOPE = "sched_accel"
#: The run duration's bucket bounds, in seconds: a run takes from a fraction of a second to an hour.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
#: The run line's fields counted as items, by outcome (``sched_accel.item.outcome``).
ITEM_OUTCOMES = ("prefetched", "missed", "wasted", "lost")
_INSTALL = "pip install 'sched-accel[otel]'"


class _Instruments:
    """The instruments on one meter: the app's (the global provider's), or our endpoint's."""

    def __init__(self, meter: Meter) -> None:
        self.runs = meter.create_counter("sched_accel.runs", "{run}", "Runs of patched loops, by target and outcome")
        try:
            self.duration = meter.create_histogram(
                "sched_accel.run.duration",
                "s",
                "How long each run of a patched loop took",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
        except TypeError:  # an API before 1.30 (an app's own, older than our extra's): its default buckets
            self.duration = meter.create_histogram(
                "sched_accel.run.duration", "s", "How long each run of a patched loop took"
            )
        self.items = meter.create_counter(
            "sched_accel.items",
            "{item}",
            "Items of runs by outcome: prefetched (served from a call sent ahead), missed (the loop made it itself), "
            "wasted (sent ahead, never used), lost (rate-limited until the retry deadline)",
        )
        self.requests = meter.create_counter(
            "sched_accel.requests",
            "{request}",
            "HTTP requests of runs by host, status class (error: no answer) and source (ahead of the loop, or live)",
        )
        self.retries = meter.create_counter(
            "sched_accel.retries", "{retry}", "Attempts of per-item calls beyond the first"
        )
        self.rate_limited = meter.create_counter(
            "sched_accel.rate_limited", "{response}", "Answers of 429 Too Many Requests"
        )
        self.limit_wait = meter.create_counter(
            "sched_accel.limit.wait_time", "s", "Time requests and calls waited for host and target limits"
        )
        gauge = getattr(meter, "create_gauge", None)  # an API before 1.23 has no synchronous gauge
        self.effective = (
            gauge("sched_accel.run.effective_concurrency", "1", "The last run's request time over its wall time")
            if gauge is not None
            else None
        )
        self.speedup = (
            gauge("sched_accel.run.speedup", "1", "The last run's speed-up over the target's last unaccelerated run")
            if gauge is not None
            else None
        )
        meter.create_observable_gauge(
            "sched_accel.host.rate",
            [_observe_rates],
            "{request}/s",
            "The rate each host's requests are paced to, and its source: declared, told (by the host) or learned",
        )

    def record(self, fields: Mapping[str, Any], answered: Mapping[tuple[str, str, str], int]) -> None:
        target = {"sched_accel.target": str(fields.get("target", ""))}
        run = {
            **target,
            "sched_accel.mode": str(fields.get("mode", "")),
            "sched_accel.outcome": str(fields.get("outcome", "")),
        }
        self.runs.add(1, run)
        if (seconds := _number(fields, "seconds")) is not None:
            self.duration.record(seconds, run)
        for outcome in ITEM_OUTCOMES:
            if (count := _number(fields, outcome)) is not None:
                self.items.add(count, {**target, "sched_accel.item.outcome": outcome})
        if (count := _number(fields, "retries")) is not None:
            self.retries.add(count, target)
        if (count := _number(fields, "http_429")) is not None:
            self.rate_limited.add(count, target)
        if (waited := _number(fields, "limit_wait")) is not None:
            self.limit_wait.add(waited, target)
        if self.effective is not None and (value := _number(fields, "effective_concurrency")) is not None:
            self.effective.set(value, target)
        if self.speedup is not None and (value := _number(fields, "speedup")) is not None:
            self.speedup.set(value, target)
        for (host, kind, source), count in answered.items():
            self.requests.add(
                count, {**_server(host), "sched_accel.http.status_class": kind, "sched_accel.request.source": source}
            )


class _Served:
    """Our own endpoint: a private provider, its reader's registry, and the HTTP server serving it."""

    def __init__(self, address: tuple[str, int], provider: Any, server: Any, instruments: _Instruments) -> None:
        self.address = address
        self.provider = provider
        self.server = server
        self.instruments = instruments

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.provider.shutdown()


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.off = False  # a failure of ours: nothing more for this process
        self.app: _Instruments | None = None  # on the global provider (or the one a test records to)
        self.served: _Served | None = None
        self.provider: MeterProvider | None = None  # recording_to()'s, instead of the global one
        #: Per Hosts, the answers already recorded, by (host, status class, source).
        self.recorded: weakref.WeakKeyDictionary[Hosts, dict[tuple[str, str, str], int]] = weakref.WeakKeyDictionary()
        self.rates_from: weakref.ref[Hosts] | None = None  # the last run's hosts: the rates observed


_state = _State()


def record_run(fields: Mapping[str, Any], hosts: Hosts | None) -> None:
    """Record one run's figures (the ``sched_accel.run`` line's ``fields``) and what its hosts
    answered since the last run recorded. Never raises; without OpenTelemetry, does nothing."""
    if _state.off:
        return
    try:
        with _state.lock:
            sinks = _sinks()
            if not sinks:
                return
            answered = _new_answers(hosts) if hosts is not None else {}
            if hosts is not None:
                _state.rates_from = weakref.ref(hosts)
        for sink in sinks:
            sink.record(fields, answered)
    except ImportError:  # OpenTelemetry named in sys.modules but not importable: as if absent
        _state.off = True
    except Exception as exc:
        _fail(f"recording the metrics of {fields.get('target', 'a run')}", exc)


def _sinks() -> list[_Instruments]:
    """The instruments to record to (under the lock): the app's provider's, made at the first run
    once OpenTelemetry's API is loaded, and our endpoint's."""
    if _state.app is None and (_state.provider is not None or "opentelemetry.metrics" in sys.modules):
        from opentelemetry import metrics

        provider = _state.provider
        meter = provider.get_meter(SCOPE, _version()) if provider is not None else metrics.get_meter(SCOPE, _version())
        _state.app = _Instruments(meter)
    sinks = [_state.app] if _state.app is not None else []
    if _state.served is not None:
        sinks.append(_state.served.instruments)
    return sinks


def _new_answers(hosts: Hosts) -> dict[tuple[str, str, str], int]:
    """What ``hosts`` answered since the last run recorded, by (host, status class, source)."""
    recorded = _state.recorded.setdefault(hosts, {})
    new: dict[tuple[str, str, str], int] = {}
    for host, counts in hosts.answers().items():
        for (kind, source), count in counts.items():
            key = (host, kind, source)
            if count > recorded.get(key, 0):
                new[key] = count - recorded.get(key, 0)
                recorded[key] = count
    return new


def _observe_rates(options: CallbackOptions) -> Iterable[Observation]:
    """The rate in force per host, read when a reader collects (a scrape)."""
    from opentelemetry.metrics import Observation

    ref = _state.rates_from
    hosts = ref() if ref is not None else None
    if hosts is None or _state.off:
        return []
    try:
        return [
            Observation(rate, {**_server(name), "sched_accel.rate.source": source})
            for name, (rate, source) in sorted(hosts.rates().items())
        ]
    except Exception as exc:
        _fail("observing the hosts' rates", exc)
        return []


def _fail(where: str, exc: Exception) -> None:
    """Our failure: said once, and metrics off for the rest of the process."""
    with _state.lock:
        if _state.off:
            return
        _state.off = True
    internal_error(f"{where} (metrics are off in this process from now on)", exc)


def _server(host: str) -> dict[str, str | int]:
    """A host's name as it is kept (``api.example.com``, or ``127.0.0.1:8080`` when declared with
    its port) as OpenTelemetry's ``server.address`` and ``server.port``."""
    name, sep, port = host.rpartition(":")
    if sep and name and ":" not in name and port.isdigit():
        return {"server.address": name, "server.port": int(port)}
    return {"server.address": host}


def _number(fields: Mapping[str, Any], key: str) -> float | None:
    """A field that is a finite number, not below 0; None for one that is missing or is not."""
    value = fields.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return value


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("sched-accel")
    except Exception:  # noqa: BLE001 - run from a source tree: no version to say
        return ""


# -- our own endpoint ---------------------------------------------------------------------------
def serve(settings: MetricsSettings) -> None:
    """Serve the metrics for Prometheus at ``[metrics] prometheus``, when set: once per process
    (a later install keeps the endpoint). Never raises: what fails is said in one line."""
    address = settings.address
    if address is None or _state.off:
        return
    shown = settings.prometheus
    try:
        with _state.lock:
            if _state.served is not None:
                if _state.served.address != address:
                    event(
                        METRICS_NOT_SERVED,
                        "this process serves its metrics at the address of its first config; restart it to move them",
                        address=shown,
                        serving=_shown(_state.served.address),
                    )
                return
            _state.served = _start(address, shown)
        if _state.served is not None:
            event(
                METRICS_SERVED,
                f"Prometheus can scrape this process's metrics at http://{shown}/metrics",
                address=shown,
            )
    except Exception as exc:
        _fail(f"serving the metrics at {shown}", exc)


def _start(address: tuple[str, int], shown: str | None) -> _Served | None:
    """Our provider, its reader and the HTTP server, or None (said why)."""
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError as exc:
        event(
            METRICS_NOT_SERVED,
            "[metrics] prometheus is set, but OpenTelemetry's SDK and Prometheus "
            f"exporter are not installed (no module {exc.name or '?'}): {_INSTALL}; the app runs on, without the "
            "endpoint",
            address=shown,
        )
        return None
    registry = CollectorRegistry()
    try:
        reader = PrometheusMetricReader(registry=registry)
    except TypeError:  # before 0.63b0: its reader takes no registry (it would use the app's global one)
        event(
            METRICS_NOT_SERVED,
            "[metrics] prometheus needs opentelemetry-exporter-prometheus 0.63b0 or "
            "later: pip install -U 'sched-accel[otel]'; the app runs on, without the endpoint",
            address=shown,
        )
        return None
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    host, port = address
    try:
        http, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        provider.shutdown()
        event(
            METRICS_NOT_SERVED,
            f"could not listen at {shown} ({exc.strerror or exc}): another process "
            "(or another worker of this app) may hold it; choose a free port in [metrics] prometheus; the app runs "
            "on, without the endpoint",
            address=shown,
        )
        return None
    return _Served(address, provider, http, _Instruments(provider.get_meter(SCOPE, _version())))


def _shown(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def served_address() -> tuple[str, int] | None:
    """Where this process serves its metrics, if it does."""
    served = _state.served
    return None if served is None else served.address


# -- for tests ----------------------------------------------------------------------------------
def reset() -> None:
    """Forget everything, for tests: the endpoint is stopped, the instruments dropped, metrics on."""
    with _state.lock:
        served, _state.served = _state.served, None
        _state.app = None
        _state.off = False
        _state.recorded = weakref.WeakKeyDictionary()
        _state.rates_from = None
    if served is not None:
        served.close()


@contextmanager
def recording_to(provider: MeterProvider) -> Iterator[None]:
    """``with recording_to(provider):`` record to ``provider`` instead of the global one (for
    tests: OpenTelemetry's global provider can be set only once per process)."""
    with _state.lock:
        before, _state.provider, _state.app = _state.provider, provider, None
    try:
        yield
    finally:
        with _state.lock:
            _state.provider, _state.app = before, None


def _forked() -> None:
    """In a forked child: no thread serves our endpoint (the parent's does), so its runs go to the
    app's provider only; and the lock may have been held by a thread that is not here."""
    _state.lock = threading.Lock()
    _state.served = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
