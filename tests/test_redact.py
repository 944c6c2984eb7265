"""What is secret in a line we show, and how it is shown: ``***`` in its place, the rest as is."""

from __future__ import annotations

import functools
import timeit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sched_accel._redact import MASK, is_secret_name, redact_headers, redact_text, redact_url

SECRET = "PLANTEDSECRET-x9"


@pytest.mark.parametrize(
    "name",
    [
        "key",
        "api_key",
        "apikey",
        "API-KEY",
        "X-Api-Key",
        "apiKey",
        "subscription-key",
        "token",
        "access_token",
        "auth_token",
        "accessToken",
        "refresh_token",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "pwd",
        "signature",
        "sig",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "X-Amz-Credential",
        "auth",
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "session",
        "session_id",
        "jwt",
        "private_key",
    ],
)
def test_secret_looking_names_are_secret(name: str) -> None:
    """Names that are, end with or contain a secret's word are secret, whatever their case."""
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "q",
        "page",
        "currency",
        "author",
        "authority",
        "keyword",
        "keys",
        "design",
        "signal",
        "user",
        "id",
        "Accept",
        "Content-Type",
        "password_env",
        "token_url",
        "token_type",
        "secret_file",
        "X-Request-Id",
        "holder",
    ],
)
def test_other_names_are_not(name: str) -> None:
    """Ordinary names, and names that say where a secret is (``password_env``), are shown."""
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.example.com/v1/items?page=2", "https://api.example.com/v1/items?page=2"),
        (f"https://user:{SECRET}@api.example.com/v1", "https://***@api.example.com/v1"),
        (f"https://{SECRET}@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
        (f"https://u:p@ss@{SECRET}@h:8443/x", "https://***@h:8443/x"),
        (f"https://u:pa/ss{SECRET}@h/x", "https://***@h/x"),
        (f"https://h/x?api_key={SECRET}&page=2", "https://h/x?api_key=***&page=2"),
        (f"https://h/x?page=2&X-Api-Key={SECRET}", "https://h/x?page=2&X-Api-Key=***"),
        (f"https://h/x?sig={SECRET};v=1", "https://h/x?sig=***;v=1"),
        (f"https://h/x?api%5Fkey={SECRET}", "https://h/x?api%5Fkey=***"),
        (f"https://h/cb#access_token={SECRET}&state=s", "https://h/cb#access_token=***&state=s"),
        (f"https://h/login?next=https://u:{SECRET}@o/", "https://h/login?next=https://***@o/"),
        (f"/v1/items?token={SECRET}", "/v1/items?token=***"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://[::1]/x", "http://[::1]/x"),
        ("https://npm.example/@types/node", "https://npm.example/@types/node"),
        ("redis://host:port", "redis://host:port"),
        ("redis://[:password@]host[:port][/db]", "redis://[:password@]host[:port][/db]"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    """A URL's user and password and its secret-looking parameters are masked; the rest is kept."""
    assert redact_url(url) == shown


def test_a_url_cut_short_inside_its_password_is_masked() -> None:
    """``repr(url)[:40]`` may end inside the password: what follows ``user:`` is not shown."""
    assert redact_url(f"https://x-access-token:{SECRET}") == "https://***"


def test_redact_headers() -> None:
    """Secret headers' values are masked; a URL in another header is redacted; bytes are read."""
    headers = {"Authorization": f"Bearer {SECRET}", "Referer": f"https://u:{SECRET}@h/", "Accept": "*/*"}
    assert redact_headers(headers) == [("Authorization", MASK), ("Referer", "https://***@h/"), ("Accept", "*/*")]
    pairs = [(b"Cookie", f"sid={SECRET}; theme=dark".encode()), (b"X-Api-Key", SECRET.encode()), (b"Host", b"h")]
    assert redact_headers(pairs) == [("Cookie", MASK), ("X-Api-Key", MASK), ("Host", "h")]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            f"first request: GET https://u:{SECRET}@h/x?api_key={SECRET}; first item: 'a'",
            "first request: GET https://***@h/x?api_key=***; first item: 'a'",
        ),
        (f"Authorization: Bearer {SECRET}\nnext line", "Authorization: ***\nnext line"),
        (f"proxy-authorization=Basic {SECRET}", "proxy-authorization=***"),
        (f"Cookie: sid={SECRET}; theme=dark", "Cookie: ***"),
        (f"refused: bearer {SECRET}", "refused: bearer ***"),
        (
            f"{{'Authorization': 'Bearer {SECRET}', 'Cookie': 'a={SECRET}', 'X-Api-Key': '{SECRET}', 'q': '1'}}",
            "{'Authorization': '***', 'Cookie': '***', 'X-Api-Key': '***', 'q': '1'}",
        ),
        (
            f"[(b'authorization', b'Basic {SECRET}'), (b'set-cookie', b'sid={SECRET}')]",
            "[(b'authorization', b'***'), (b'set-cookie', b'***')]",
        ),
        (f'{{"password": "{SECRET}", "user": "bob"}}', '{"password": "***", "user": "bob"}'),
        (f"X-Api-Key: {SECRET}", "X-Api-Key: ***"),
        (
            f"Max retries exceeded with url: /v1?api_key={SECRET} (Caused by X)",
            "Max retries exceeded with url: /v1?api_key=*** (Caused by X)",
        ),
        (f"client_secret={SECRET}&grant_type=client_credentials", "client_secret=***&grant_type=client_credentials"),
        (f"keyword=https://u:{SECRET}@h/a", "keyword=https://***@h/a"),
    ],
)
def test_redact_text_finds_secrets_in_free_text(text: str, shown: str) -> None:
    """URLs, Bearer credentials, secret headers to the end of their line, secret name=value pairs."""
    assert redact_text(text) == shown
    assert SECRET not in redact_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "sched_accel.run target=jobs:refresh_tokens mode=prefetch outcome=ok items=12",
        "  jobs:refresh_tokens: on (prefetch, concurrency 8)",
        "coordination.password_env is the redis backend's password: set coordination.url too",
        "coordination.password_env = 'APP_REDIS_PASSWORD', and $APP_REDIS_PASSWORD is not set",
        "export SCHED_ACCEL_PASSWORD_ENVS=APP_REDIS_PASSWORD",
        "or name the server in $SCHED_ACCEL_REDIS_URL=redis://host:port",
        "the loop's requests differed from the ones sent ahead (in authorization, cookie), so none was served",
        "jobs:update  items  argument 'tokens'   ok    the loop's parameter 'tokens'",
        "author=alice&page=2",
        "control file /tmp/x/state/control.json: switched off: nothing",
        "",
    ],
)
def test_redact_text_leaves_our_own_lines_as_they_are(text: str) -> None:
    """Lines without secrets, our messages and check/status lines among them, are unchanged."""
    assert redact_text(text) == text


def test_redacting_is_idempotent() -> None:
    """A redacted line redacted again is the same line (the CLI may redact a logged line)."""
    once = redact_text(f"GET https://u:{SECRET}@h/x?api_key={SECRET} Authorization: Bearer {SECRET}")
    assert redact_text(once) == once


#: What a password may hold unescaped in a URL's user part and stay one (not ``/?#``, which end it).
_PASSWORD = st.text(st.sampled_from("abcXYZ0189-._~!$&()*+,;=:%@"), min_size=6, max_size=30).filter(
    lambda pw: not pw[:1].isdigit()
)
#: What a query value may hold (not ``&;#``, which end it, nor spaces or quotes, which end the URL).
_VALUE = st.text(st.sampled_from("abcXYZ0189-._~!$()*+,=:%@/?"), min_size=6, max_size=30)
_SECRET_PARAMS = [
    "api_key",
    "apikey",
    "token",
    "access_token",
    "secret",
    "client_secret",
    "password",
    "sig",
    "X-Api-Key",
]


@given(
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    password=_PASSWORD,
    value=_VALUE,
    name=st.sampled_from(_SECRET_PARAMS),
)
def test_a_planted_secret_never_survives(before: str, after: str, password: str, value: str, name: str) -> None:
    """Whatever text surrounds it, a URL's password and a secret parameter's value are masked."""
    password, value = f"{password}{SECRET}", f"{SECRET}{value}"
    assert SECRET not in redact_text(
        f"{before} GET https://user:{password}@api.example.com/v1?page=2&{name}={value} {after}"
    )
    assert redact_text(f"https://user:{password}@api.example.com/v1?page=2&{name}={value}") == (
        f"https://***@api.example.com/v1?page=2&{name}=***"
    )


@given(st.text())
def test_any_text_is_redacted_without_error(text: str) -> None:
    """Redacting never raises, and a second pass changes nothing."""
    once = redact_text(text)
    assert redact_text(once) == once


def test_redacting_a_typical_line_costs_microseconds() -> None:
    """A warning line with a URL takes well under 100 us (a few us on a laptop), one without even less."""
    line = (
        "no request of the loop contains a value of an item (first request: GET "
        f"https://user:{SECRET}@api.example.com/v1/prices?api_key={SECRET}&currency=usd; first item: 'BTC'); "
        "check items = tokens"
    )
    plain = "sched_accel.run target=jobs:refresh mode=prefetch outcome=ok items=120 ok=120 failed=0"
    for text in (line, plain):
        best = min(timeit.repeat(functools.partial(redact_text, text), number=200, repeat=5)) / 200
        assert best < 100e-6, f"{best * 1e6:.1f} us for {text!r}"
