"""The corpus: each program, the public program it is modelled on, and how it is started.

Each program lives in ``programs/<name>/`` with the ``sched_accel.toml`` a user would write
after reading the README (loop, items when the README says they are needed, concurrency).
Its module docstring names the public program it follows and what that program does; the
code is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROGRAMS", "Program", "by_name"]


@dataclass(frozen=True, slots=True)
class Program:
    """One program of the corpus.

    ``command`` is what follows ``python`` in the program's working directory; ``setup``
    commands run once, flag off, in a template folder copied into each run's folder (a
    database to migrate and load, so both runs start from the same bytes). A variant runs the
    program of another folder with another config. A ``learned``
    program's config names no items: the README says its first accelerated run records the
    requests, so the harness runs it accelerated once before the measured run.
    """

    name: str
    shape: str
    modelled_on: str
    command: tuple[str, ...]
    setup: tuple[tuple[str, ...], ...] = ()
    learned: bool = False
    needs_redis: bool = False
    #: the folder under programs/ (default: the name) and the config in it: a variant runs
    #: the same program with another config (``sched_accel.<variant>.toml``)
    directory: str = ""
    config: str = "sched_accel.toml"

    @property
    def folder(self) -> str:
        return self.directory or self.name


DJANGO_SETUP = (("manage.py", "migrate", "-v", "0"), ("manage.py", "loaddata", "cities", "-v", "0"))

PROGRAMS: tuple[Program, ...] = (
    Program(
        "weather_coords",
        "dict items of floats -> requests params; a file per item",
        "cosimopoccianti/Free-weather-API",
        ("weathercode.py",),
    ),
    Program(
        "city_weather_csv",
        "values the client encodes (New York -> q=New+York); one Session",
        "krav4andrii/weather_api_request",
        ("main.py",),
    ),
    Program(
        "wttr_path",
        "item in a path segment (Cyrillic, 2-letter names), percent-encoded",
        "Forgman75/weather",
        ("weather.py",),
    ),
    Program(
        "coin_prices_sqlite",
        "module-level requests.get per item; SQLite rows; KeyError stops the loop",
        "Toxicsociety/crypto_price_pipeline",
        ("main.py",),
    ),
    Program(
        "solana_wallets",
        "JSON-RPC reads as POST, chained (accounts -> balance), plus a GET",
        "BallisticCrypto/multi-token-solana-checker",
        ("check_balances.py",),
    ),
    Program(
        "url_health",
        "module-level counter; 503, 404 and a refused connection",
        "derrekyoung/url-checker-python",
        ("generic_url_checker.py",),
    ),
    Program("rss_dedupe", "dedupe set on self; SQLite and a file written", "er0k/feeds", ("feed.py",)),
    Program(
        "github_stars_md",
        "tuple items parsed from files; sleep in the loop; files rewritten",
        "jeevananikitha/Multiagent-model",
        ("update_stars.py",),
    ),
    Program(
        "graphql_users", "GraphQL query as POST, then a write POST per item", "VietFOSS/vn-foss", ("query_github.py",)
    ),
    Program(
        "cdr_pages_csv",
        "cursor pagination (each request from the last answer); CSV",
        "carrierx/cdr-apps",
        ("after_all_fields.py",),
        learned=True,
    ),
    Program(
        "movie_watchlist",
        "chained search -> detail; fetch declared (function level)",
        "annyconfessor/cinebrain",
        ("watchlist.py",),
    ),
    Program(
        "pypi_versions_client",
        "SDK-style client class made per item; item = a line, URL = part of it",
        "Josheriff/version_matcher",
        ("check.py", "requirements.txt"),
    ),
    Program(
        "pypi_validate_generator",
        "generator of items; urllib; 404s",
        "posit-dev/positron",
        ("validate_packages.py",),
        learned=True,
    ),
    Program(
        "aiohttp_pages", "async; aiohttp, a new ClientSession per item; file written", "Hinkalina/Notes", ("crawl.py",)
    ),
    Program(
        "httpx_async_status", "async; httpx, a new AsyncClient per item", "NicholasBallard/tempo", ("try_status.py",)
    ),
    Program(
        "login_dashboards",
        "login POST per item, then GETs in that session; CSV",
        "zwa004/fitness_memberships",
        ("memberships.py",),
    ),
    Program(
        "apscheduler_prices",
        "APScheduler job; items from a request in the job; PUT per item",
        "Mascerade/price-assist-server",
        ("auto_tracker.py",),
        learned=True,
    ),
    Program(
        "github_issues_sqlite",
        "httpx.Client; pagination inside the per-item loop; SQLite",
        "austinsalinas4444/github-API-Integration-cli",
        ("github_cli.py",),
    ),
    Program(
        "celery_forecasts",
        "Celery task (module:task) in a real worker, solo pool, Redis broker",
        "clement-daubrenet/web-development",
        ("run_job.py",),
        needs_redis=True,
    ),
    Program(
        "django_weather",
        "Django management command over a queryset; ORM writes",
        "Miikka-K/saaennusteen-visualisointi-Django-Chart.js",
        ("manage.py", "fetch_weather"),
        setup=DJANGO_SETUP,
    ),
    Program(
        "payments_fx_cache",
        "fetch declared on a function that reads and fills a module-level cache; repeated items; logging",
        "zachmonari/python-OOP",
        ("settle.py",),
    ),
    Program(
        "django_weather_fetch",
        "the Django command with its ORM-writing per-item function declared as fetch; items learned",
        "Miikka-K/saaennusteen-visualisointi-Django-Chart.js",
        ("manage.py", "fetch_weather"),
        setup=DJANGO_SETUP,
        learned=True,
        directory="django_weather",
        config="sched_accel.fetch.toml",
    ),
    Program(
        "stock_prices_client",
        "fetch declared on a class method that logs through self.logger and writes SQLite through a parameter's method",
        "richwandell/stock-data",
        ("load_prices.py",),
    ),
    Program(
        "stock_prices_async",
        "async fetch declared on a class method that logs and awaits its own aiosqlite write",
        "richwandell/stock-data",
        ("load_prices.py",),
    ),
    Program(
        "movie_watchlist_http",
        "chained search -> detail, HTTP level (no fetch)",
        "annyconfessor/cinebrain",
        ("watchlist.py",),
        directory="movie_watchlist",
        config="sched_accel.http.toml",
    ),
    Program(
        "pypi_versions_client_fetch",
        "fetch declared on the SDK client's method, its instance made per item; items learned",
        "Josheriff/version_matcher",
        ("check.py", "requirements.txt"),
        learned=True,
        directory="pypi_versions_client",
        config="sched_accel.fetch.toml",
    ),
)


def by_name(name: str) -> Program:
    """The program called ``name``."""
    for program in PROGRAMS:
        if program.name == name:
            return program
    raise KeyError(name)
