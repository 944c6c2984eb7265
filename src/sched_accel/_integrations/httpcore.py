"""httpcore (1.0 and later), under httpx: where a request's rate token is taken, as its
connection writes the request's headers (``_send_request_headers``, private: the version
matrix, ``noxfile.py``, runs our tests on its lowest and newest).

Taken there, once the connection has marked itself ACTIVE, not on entering its
``handle_request``: until then the pool sees a connection it has handed to a request as IDLE,
so for the whole wait another thread's pass would hand it to other requests, or close it as
expired (its keep-alive clock runs until ACTIVE) and, as the request goes out meanwhile, close
its socket under the response being read (``ReadError: [Errno 9] Bad file descriptor``). Its
requests are httpx's: seen, described and served at httpx's layers.
"""

from __future__ import annotations

from ._base import Hook, Integration

__all__ = ["INTEGRATION"]

INTEGRATION = Integration(
    name="httpcore",
    modules=frozenset({"httpcore"}),
    supported=">=1.0.0",
    wires=(
        (Hook("httpcore", "HTTP11Connection", "_send_request_headers"), False),
        (Hook("httpcore", "AsyncHTTP11Connection", "_send_request_headers"), True),
        (Hook("httpcore", "HTTP2Connection", "_send_request_headers"), False),
        (Hook("httpcore", "AsyncHTTP2Connection", "_send_request_headers"), True),
    ),
)
