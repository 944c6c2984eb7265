"""Prefetch mode: the loop's per-item calls run ahead of it, the loop itself runs unchanged.

The data path of one run, one module each:

- ``_sources``: where the items come from (each ``ItemSource`` form), read without the loop noticing;
- ``_shape``: how the loop calls the per-item function, learned from its first call;
- ``_probe``: stepping aside when calls are cheaper than fanning them out;
- ``_run``: one run's predictions, in order, matched to the loop's real calls;
- ``_interceptors``: the wrappers that serve those calls (and capture items, skip sleeps);
- ``_requests``: where an item's values are in a request's URL (HTTP-level prefetch);
- ``_fetchers``: a request sent early through an HTTP library's ``Client`` (``_integrations``:
  what a request of each library is, the same request for another URL, its answer kept and served);
- ``_closing``: clients the app closes while requests sent ahead still use them;
- ``_http_run``: one run's requests sent ahead, matched exactly to the loop's own;
- ``_tally``: the run line's ok and failed at HTTP level, each item's request by its answer;
- ``_why``: the one line a run that did not accelerate says;
- ``_purity``: whether a per-item function writes, or is an HTTP library's own (then it is not run ahead);
- ``_mutations``: whether a shadow of the per-item function could change Python state the real
  run reads (stores and mutating calls outside it, followed through its calls);
- ``_reads``: which requests are reads (GET and HEAD, GraphQL queries, JSON-RPC reads, what a
  host declares);
- ``_shadow``: one run whose per-item calls are shadowed ahead of the loop, their reads served
  to the real calls by exact match;
- ``_mode``: the wrapper on the loop: a run from its start to its report.
"""

from __future__ import annotations

from ._closing import closing
from ._interceptors import FetchInterceptor, Owner, SleepSkipper, SourceCapture
from ._mode import REPROBE_EVERY, PrefetchMode
from ._mutations import Verdict, mutations
from ._purity import library_method, writes
from ._run import CURRENT, PrefetchRun

__all__ = [
    "CURRENT",
    "REPROBE_EVERY",
    "FetchInterceptor",
    "Owner",
    "PrefetchMode",
    "PrefetchRun",
    "SleepSkipper",
    "SourceCapture",
    "Verdict",
    "closing",
    "library_method",
    "mutations",
    "writes",
]
