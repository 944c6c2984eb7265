"""The per-item function a loop calls, found on the stack of its request (``_found``)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from sched_accel._prefetch._found import Found, find

from ..conftest import App

# Stands for an HTTP library: where our wrapper sees the loop's request, and looks up the stack.
LIBRARY = """
    from sched_accel._prefetch._found import find

    SEEN = []
    LOOP = [None]
    ITEMS = []

    def get(url):
        SEEN.append(find(LOOP[0], ITEMS))
        return url
"""

APP = """
    import fakelib

    class Client:
        def get_pair(self, token):
            return fakelib.get(f"/pair/{token}")

    def by_name(token):
        return fakelib.get(f"/{token}")

    def loop(tokens):
        client = Client()
        return [client.get_pair(token) for token in tokens]  # a listcomp's frame is the loop's

    def direct(tokens):
        return [fakelib.get(f"/{t}") for t in tokens]  # the loop calls the library itself

    def derived(tokens):
        return [by_name(t.upper()) for t in tokens]
"""


@pytest.fixture
def found_app(app: App, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The app, and the fake library it calls, from a site-packages folder."""
    app.write("site-packages/fakelib.py", LIBRARY)
    monkeypatch.syspath_prepend(str(app.root / "site-packages"))
    app.names.append("fakelib")
    app.write("found_app.py", APP)
    library: Any = importlib.import_module("fakelib")
    library.ITEMS[:] = ["a", "b"]
    return importlib.import_module("found_app"), library


def test_a_method_the_loop_calls_with_each_item_is_named_with_its_place(found_app: tuple[Any, Any]) -> None:
    """Found through a list comprehension: the method, its file and line, called with the item."""
    module, library = found_app
    library.LOOP[0] = module.loop.__code__
    module.loop(["a", "b"])
    assert library.SEEN[0] == Found("found_app:Client.get_pair", "found_app.py:4", with_item=True)
    assert 'fetch = "found_app:Client.get_pair" shadows it' in library.SEEN[0].hint()


def test_a_request_the_loop_makes_itself_names_nothing(found_app: tuple[Any, Any]) -> None:
    """A loop that calls the HTTP library itself has no per-item function to name."""
    module, library = found_app
    library.LOOP[0] = module.direct.__code__
    module.direct(["a", "b"])
    assert library.SEEN == [None, None]


def test_a_function_called_with_values_made_from_the_item_says_so(found_app: tuple[Any, Any]) -> None:
    """Called with ``t.upper()``: found, but not with the item itself."""
    module, library = found_app
    library.LOOP[0] = module.derived.__code__
    module.derived(["a", "b"])
    assert library.SEEN[0] == Found("found_app:by_name", "found_app.py:7", with_item=False)
    assert "values made from each item" in library.SEEN[0].hint()


def test_outside_the_loop_nothing_is_found() -> None:
    """A request made outside the loop (no loop frame on the stack) names nothing."""
    assert find(test_outside_the_loop_nothing_is_found.__code__.replace(co_name="other")) is None


def test_a_run_that_did_not_accelerate_names_the_function_to_declare(
    app: App, monkeypatch: pytest.MonkeyPatch, capture_events: list[str]
) -> None:
    """An HTTP-level loop whose reads are POSTs (GraphQL queries) says why it was not
    accelerated, and which function to name as ``fetch`` so that a shadow sends them ahead."""
    from ..faultserver import FaultServer
    from .test_prefetch_shapes import install
    from .test_shadow import GRAPHQL

    app.write("gql_found.py", GRAPHQL)
    app.config('[[targets]]\nloop = "gql_found:run"\nitems = "users"\nconcurrency = 4\n')
    install(monkeypatch, capture_events)
    module: Any = importlib.import_module("gql_found")
    with FaultServer(latency=0.0) as server:
        module.run([f"u{i}" for i in range(4)], server.url)
    [line] = [line for line in capture_events if line.startswith("sched_accel.not_accelerated")]
    assert "not GET or HEAD" in line
    assert (
        'the loop\'s requests are made by gql_found:sync_user (gql_found.py:8), called with each item: fetch = "gql_found:sync_user" shadows it'
        in line
    )
