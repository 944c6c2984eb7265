"""One fake upstream for the whole corpus: every API the programs call, on 127.0.0.1.

Each program reads the address from ``REALWORLD_API`` where the program it is modelled on
hard-codes the public host; each API lives under its own path prefix (``/openmeteo``,
``/coingecko``, ``/solana``, ...). Every answer is derived from the request alone (a hash of
its method, path, query and body), so a sequential and an accelerated run see the same
data; every endpoint answers after a latency of its own, between 50 and 90 ms, fixed per
request, as a real API's would be roughly fixed per call.

Every request is counted under its key: method, path (percent-decoded), query pairs
(decoded, in the order sent, so ``q=New+York`` and ``q=New%20York`` are the same request, as
the server sees them), and body (JSON re-serialised with sorted keys; a form decoded). The
harness resets the counts before each run, waits until nothing is in flight, and reads
them, with the span from the first request's arrival to the last answer's end.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["Key", "Reply", "Request", "Upstream", "number"]

#: method, decoded path, decoded query pairs, canonical body
Key = tuple[str, str, tuple[tuple[str, str], ...], str]


def number(*parts: object) -> int:
    """A deterministic number for the given parts (the fake's only source of 'data')."""
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)


@dataclass
class Request:
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: bytes
    headers: dict[str, str]
    groups: tuple[str, ...] = ()

    @property
    def params(self) -> dict[str, str]:
        return dict(self.query)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("latin-1"), keep_blank_values=True))

    def key(self) -> Key:
        return (self.method, self.path, self.query, canonical_body(self.body))


def canonical_body(body: bytes) -> str:
    """The body as the server understands it: JSON with sorted keys, a form's decoded pairs."""
    if not body:
        return ""
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        pass
    text = body.decode("latin-1")
    if "=" in text and " " not in text:
        return "&".join(f"{k}={v}" for k, v in parse_qsl(text, keep_blank_values=True))
    return text


@dataclass
class Reply:
    body: Any = None
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Handler = Callable[[Request], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    latency: tuple[float, float] = (0.05, 0.09)


ROUTES: list[Route] = []


def route(method: str, pattern: str, latency: tuple[float, float] = (0.05, 0.09)) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, re.compile(pattern + r"\Z"), handler, latency))
        return handler

    return register


def not_found(message: str = "Not Found") -> Reply:
    return Reply({"message": message}, status=404)


# -- Open-Meteo (weather_coords, django_weather) -------------------------------------------------
@route("GET", r"/openmeteo/v1/forecast")
def open_meteo(request: Request) -> Reply:
    p = request.params
    lat, lon = float(p["latitude"]), float(p["longitude"])
    hours = [f"2026-12-01T{h:02d}:00" for h in range(0, 24, 4)]
    temps = [round((number(lat, lon, h) % 400) / 10 - 10, 1) for h in range(len(hours))]
    return Reply(
        {
            "latitude": lat,
            "longitude": lon,
            "timezone": p.get("timezone", "GMT"),
            "hourly": {"time": hours, "temperature_2m": temps},
        }
    )


# -- OpenWeatherMap (city_weather_csv, celery_forecasts) -----------------------------------------
@route("GET", r"/owm/data/2\.5/weather")
def owm_weather(request: Request) -> Reply:
    city = request.params.get("q", "")
    if "atlantis" in city.lower():
        return Reply({"cod": "404", "message": "city not found"}, status=404)
    n = number("owm", city)
    return Reply(
        {
            "name": city.split(",")[0],
            "id": n % 9_000_000,
            "main": {"temp": round(n % 350 / 10, 1), "pressure": 990 + n % 40},
            "weather": [{"description": ["clear sky", "light rain", "mist"][n % 3]}],
            "wind": {"speed": round(n % 120 / 10, 1)},
        }
    )


@route("GET", r"/owm/data/2\.5/forecast/daily")
def owm_daily(request: Request) -> Reply:
    city_id = request.params["id"]
    n = number("daily", city_id)
    days = [
        {
            "dt": 1_796_000_000 + 86_400 * d,
            "temp": {"min": round(n % (50 + d) / 10, 1), "max": round(n % (90 + d) / 10 + 5, 1)},
        }
        for d in range(3)
    ]
    return Reply({"city": {"id": int(city_id), "name": f"city-{city_id}"}, "cnt": 3, "list": days})


# -- wttr.in (wttr_path) ----------------------------------------------------------------------------
@route("GET", r"/wttr/([^/]+)")
def wttr(request: Request) -> Reply:
    place = request.groups[0]
    n = number("wttr", place, request.params.get("lang"))
    return Reply(
        f"{place}: {'+' if n % 2 else '-'}{n % 25}°C, {['ясно', 'облачно', 'дождь'][n % 3]}\n",
        content_type="text/plain; charset=utf-8",
    )


# -- CoinGecko (coin_prices_sqlite) --------------------------------------------------------------
DELISTED = {"terra-luna", "ftx-token-old"}


@route("GET", r"/coingecko/api/v3/simple/price")
def coingecko(request: Request) -> Reply:
    p = request.params
    out = {}
    for coin in p["ids"].split(","):
        if coin in DELISTED:
            continue  # as CoinGecko does: an unknown id is simply missing from the answer
        n = number("cg", coin)
        out[coin] = {
            p.get("vs_currencies", "usd"): round(n % 10_000_000 / 100, 2),
            "last_updated_at": 1_796_200_000 + n % 3600,
        }
    return Reply(out)


# -- Solana JSON-RPC and an explorer (solana_wallets) --------------------------------------------
@route("POST", r"/solana")
def solana(request: Request) -> Reply:
    call = request.json()
    method, params = call["method"], call.get("params", [])
    if method == "getTokenAccountsByOwner":
        wallet = params[0]
        accounts = [
            {
                "pubkey": f"{wallet[:6]}acct{i}",
                "account": {"data": {"parsed": {"info": {"mint": f"Mint{number(wallet, i) % 997}"}}}},
            }
            for i in range(number("accts", wallet) % 3)
        ]
        value: Any = accounts
    elif method == "getTokenAccountBalance":
        n = number("bal", params[0])
        value = {
            "amount": str(n % 10**9),
            "decimals": 6,
            "uiAmount": n % 10**9 / 1e6,
            "uiAmountString": str(n % 10**9 / 1e6),
        }
    elif method == "getBalance":
        value = number("lamports", params[0]) % 10**12
    else:
        return Reply({"jsonrpc": "2.0", "id": call.get("id"), "error": {"code": -32601, "message": "Method not found"}})
    return Reply({"jsonrpc": "2.0", "id": call.get("id"), "result": {"context": {"slot": 312_000_000}, "value": value}})


@route("GET", r"/explorer/account/([^/]+)")
def explorer(request: Request) -> Reply:
    wallet = request.groups[0]
    labels = ["", "exchange hot wallet", "market maker", "treasury"]
    return Reply({"account": wallet, "label": labels[number("label", wallet) % 4]})


# -- sites behind a health check (url_health) ----------------------------------------------------
@route("GET", r"/sites/([^/]+)/health")
def site_health(request: Request) -> Reply:
    site = request.groups[0]
    if site == "status-page":
        return Reply({"status": "maintenance"}, status=503, headers={"Retry-After": "1"})
    if site == "old-blog":
        return Reply("gone", status=404, content_type="text/plain")
    return Reply({"status": "ok", "version": f"1.{number(site) % 20}"})


# -- RSS feeds (rss_dedupe) -----------------------------------------------------------------------
@route("GET", r"/feeds/([a-z0-9-]+)\.xml")
def feed(request: Request) -> Reply:
    name = request.groups[0]
    start = number("feed", name) % 12
    items = "".join(
        f"<item><title>Story {i}</title><link>https://news.example/story/{i}</link>"
        f"<pubDate>Mon, {1 + i % 28:02d} Dec 2026 10:00:00 GMT</pubDate></item>"
        for i in range(start, start + 4)
    )
    xml = f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>{items}</channel></rss>'
    return Reply(xml, content_type="application/rss+xml")


# -- GitHub REST and GraphQL (github_stars_md, github_issues_sqlite, graphql_users) ----------------
@route("GET", r"/github/repos/([^/]+)/([^/]+)")
def github_repo(request: Request) -> Reply:
    owner, repo = request.groups
    if repo.startswith("deleted"):
        return not_found()
    return Reply(
        {
            "full_name": f"{owner}/{repo}",
            "stargazers_count": number("stars", owner, repo) % 90_000,
            "forks_count": number("forks", owner, repo) % 9_000,
        }
    )


@route("GET", r"/github/repos/([^/]+)/([^/]+)/issues")
def github_issues(request: Request) -> Reply:
    owner, repo = request.groups
    p = request.params
    per_page, page = int(p.get("per_page", "30")), int(p.get("page", "1"))
    total = 3 + number("issues", owner, repo) % 9
    first = (page - 1) * per_page
    issues = []
    for i in range(first, min(total, first + per_page)):
        issue: dict[str, Any] = {
            "number": total - i,
            "title": f"{repo} issue {total - i}",
            "state": "open",
            "user": {"login": f"user{number(repo, i) % 50}"},
        }
        if number("pr", repo, i) % 4 == 0:
            issue["pull_request"] = {"url": f"https://api.example/pulls/{total - i}"}
        issues.append(issue)
    return Reply(issues)


@route("POST", r"/github/graphql")
def github_graphql(request: Request) -> Reply:
    payload = request.json()
    if not payload.get("query", "").lstrip().startswith("query"):
        return Reply({"errors": [{"message": "only queries here"}]}, status=400)
    login = payload.get("variables", {}).get("login", "")
    n = number("gql", login)
    return Reply(
        {
            "data": {
                "user": {
                    "login": login,
                    "name": login.title(),
                    "company": ["", "@acme", "@initech"][n % 3],
                    "location": ["Hanoi", "Ho Chi Minh City", "Da Nang", ""][n % 4],
                    "followers": {"totalCount": n % 5000},
                    "repositories": {"totalCount": n % 300},
                }
            }
        }
    )


@route("POST", r"/directory/members")
def directory_upsert(request: Request) -> Reply:
    member = request.json()
    return Reply({"ok": True, "id": number("member", member.get("login")) % 100_000}, status=201)


# -- CarrierX call detail records (cdr_pages_csv) ------------------------------------------------
CDRS = [f"cdr-{i:04d}" for i in range(1, 38)]


@route("GET", r"/carrierx/core/v2/calls/call_drs")
def call_drs(request: Request) -> Reply:
    p = request.params
    limit = int(p.get("limit", "100"))
    after = p.get("after")
    start = CDRS.index(after) + 1 if after in CDRS else 0
    rows = [
        {
            "dr_sid": sid,
            "date_stop": f"2026-03-{15 + i % 10:02d}T10:{i % 60:02d}:00Z",
            "duration": number("dur", sid) % 600,
            "number_src": f"+1555{number('src', sid) % 10**7:07d}",
            "number_dst": f"+1555{number('dst', sid) % 10**7:07d}",
        }
        for i, sid in enumerate(CDRS)
        if i >= start
    ]
    return Reply({"count": len(rows[:limit]), "items": rows[:limit]})


# -- TMDB (movie_watchlist) -----------------------------------------------------------------------
@route("GET", r"/tmdb/3/search/movie")
def tmdb_search(request: Request) -> Reply:
    title = request.params.get("query", "")
    if title.lower().startswith("untitled"):
        return Reply({"page": 1, "results": [], "total_results": 0})
    return Reply(
        {"page": 1, "results": [{"id": number("tmdb", title.lower()) % 900_000, "title": title}], "total_results": 1}
    )


@route("GET", r"/tmdb/3/movie/(\d+)")
def tmdb_movie(request: Request) -> Reply:
    movie = int(request.groups[0])
    genres = ["Comedy", "Drama", "Animation", "Thriller", "Science Fiction"]
    return Reply(
        {
            "id": movie,
            "runtime": 80 + movie % 90,
            "vote_average": round(movie % 90 / 10, 1),
            "genres": [{"name": genres[movie % 5]}, {"name": genres[movie % 3]}],
        }
    )


# -- PyPI JSON API (pypi_versions_client, pypi_validate_generator) -------------------------------
@route("GET", r"/pypi/([^/]+)/json")
def pypi(request: Request) -> Reply:
    name = request.groups[0].lower()
    if name.startswith("internal-"):
        return not_found()
    n = number("pypi", name)
    releases: dict[str, list[object]] = {
        f"{major}.{minor}.0": [] for major in range(1 + n % 3) for minor in range(n % 4)
    }
    version = f"{n % 3}.{n % 4}.0" if n % 4 else "0.1.0"
    return Reply({"info": {"name": name, "version": version}, "releases": releases or {"0.1.0": []}})


# -- ClubReady, behind a login (login_dashboards) -----------------------------------------------
def _session_of(request: Request) -> str | None:
    cookie = request.headers.get("cookie", "")
    match = re.search(r"crsession=([a-z0-9]+)", cookie)
    return match.group(1) if match else None


@route("POST", r"/clubready/Security/Login")
def clubready_login(request: Request) -> Reply:
    form = request.form()
    if form.get("pw") != f"pw-{form.get('uid')}":
        return Reply("<html>Login failed</html>", status=401, content_type="text/html")
    token = f"{number('session', form.get('uid')) % 10**10:x}"
    return Reply(
        "<html>Welcome</html>",
        content_type="text/html",
        headers={"Set-Cookie": f"crsession={token}; Path=/clubready; HttpOnly"},
    )


@route("GET", r"/clubready/Dashboard/MainDashboard")
def clubready_dashboard(request: Request) -> Reply:
    token = _session_of(request)
    if token is None:
        return Reply(
            "<html>Please log in</html>",
            status=302,
            content_type="text/html",
            headers={"Location": "/clubready/Security/Login"},
        )
    n = number("dash", token)
    return Reply(
        f"<html><span id='checkins'>{n % 300}</span><span id='revenue'>{n % 90_000}</span></html>",
        content_type="text/html",
    )


@route("GET", r"/clubready/Members")
def clubready_members(request: Request) -> Reply:
    token = _session_of(request)
    if token is None:
        return Reply({"error": "not logged in"}, status=401)
    status = request.params.get("status", "all")
    return Reply({"status": status, "count": number("members", token, status) % 2000})


# -- Price Assist (apscheduler_prices) -----------------------------------------------------------
@route("GET", r"/prices/item_model_data")
def item_models(request: Request) -> Reply:
    return Reply(
        {
            "item_models": [
                "FX504GM-ES74",
                "XPS 13 9310",
                "ThinkPad T14s",
                "MacBook Air M2",
                "ROG G14",
                "Surface Laptop 5",
                "Galaxy Book3",
                "Aspire 5",
                "IdeaPad 3",
                "Pavilion 15",
            ]
        }
    )


@route("GET", r"/prices/api/query")
def price_query(request: Request) -> Reply:
    model = request.params["item_model"]
    retailers = ["amazon", "bestbuy", "newegg"]
    return Reply({r: round(number(r, model) % 200_000 / 100 + 300, 2) for r in retailers})


@route("PUT", r"/prices/")
def price_store(request: Request) -> Reply:
    return Reply({"stored": request.json().get("item_model")})


# -- exchange rates (payments_fx_cache) -------------------------------------------------------------
@route("GET", r"/fx/v4/latest/([A-Z]{3})")
def fx_latest(request: Request) -> Reply:
    base = request.groups[0]
    n = number("fx", base)
    return Reply(
        {
            "base": base,
            "date": "2026-12-01",
            "time_last_updated": 1_796_169_601,
            "rates": {"USD": round(0.005 + n % 20_000 / 10_000, 4), base: 1.0},
        }
    )


# -- a stock price API (stock_prices_client) ------------------------------------------------------
@route("GET", r"/stocks/query")
def stock_daily(request: Request) -> Reply:
    symbol = request.params["symbol"]
    days = {
        f"2026-11-{d:02d}": {"4. close": f"{number('close', symbol, d) % 90_000 / 100 + 10:.2f}"}
        for d in (24, 25, 26, 27)
    }
    return Reply({"Meta Data": {"2. Symbol": symbol}, "Time Series (Daily)": days})


# -- pages for the async crawlers (aiohttp_pages, httpx_async_status) ------------------------------
@route("GET", r"/pages/([^/]+)")
def page(request: Request) -> Reply:
    slug = request.groups[0]
    if slug == "missing":
        return Reply("<html>404</html>", status=404, content_type="text/html")
    words = " ".join(f"w{number(slug, i) % 97}" for i in range(20 + number("len", slug) % 60))
    return Reply(f"<html><title>{slug}</title><body>{words}</body></html>", content_type="text/html")


class Upstream:
    """Start with ``with Upstream() as api:``; ``api.url`` is its base URL."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[Key] = Counter()
        self.in_flight = 0
        self.first = 0.0
        self.last = 0.0
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                upstream._handle(self)

            def do_POST(self) -> None:
                upstream._handle(self)

            def do_PUT(self) -> None:
                upstream._handle(self)

            def do_HEAD(self) -> None:
                upstream._handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away (a process ended with requests in flight)

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Upstream:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Forget the counts (after the last run's requests have all been answered)."""
        self.wait_idle()
        with self.lock:
            self.counts.clear()
            self.first = self.last = 0.0

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no request is being answered (those sent ahead by a process now gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.in_flight == 0:
                    return
            time.sleep(0.01)

    def snapshot(self) -> tuple[Counter[Key], float]:
        """The counts since the last reset, and the span from first arrival to last answer."""
        self.wait_idle()
        with self.lock:
            return Counter(self.counts), max(0.0, self.last - self.first)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(
            method=handler.command,
            path=unquote(split.path),
            query=tuple(parse_qsl(split.query, keep_blank_values=True)),
            body=body,
            headers={k.lower(): v for k, v in handler.headers.items()},
        )
        with self.lock:
            self.counts[request.key()] += 1
            self.in_flight += 1
            if not self.first:
                self.first = started
        try:
            reply, latency = self._answer(request)
            time.sleep(latency)
            data = reply.encoded()
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(data)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.last = max(self.last, time.monotonic())

    @staticmethod
    def _answer(request: Request) -> tuple[Reply, float]:
        for candidate in ROUTES:
            if candidate.method != request.method and not (candidate.method == "GET" and request.method == "HEAD"):
                continue
            match = candidate.pattern.match(request.path)
            if match is None:
                continue
            request.groups = match.groups()
            low, high = candidate.latency
            latency = low + (number(*request.key()) % 1000) / 1000 * (high - low)
            try:
                return candidate.handler(request), latency
            except (KeyError, ValueError, TypeError) as exc:
                return Reply({"message": f"bad request: {exc!r}"}, status=400), latency
        return not_found(f"no route for {request.method} {request.path}"), 0.05
