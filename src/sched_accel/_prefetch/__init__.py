"""Prefetch mode: the loop's per-item calls run ahead of it, the loop itself runs unchanged.

The data path of one run, one module each:

- ``_sources``: where the items come from (each ``ItemSource`` form), read without the loop noticing;
- ``_shape``: how the loop calls the per-item function, learned from its first call;
- ``_probe``: stepping aside when calls are cheaper than fanning them out;
- ``_run``: one run's predictions, in order, matched to the loop's real calls;
- ``_interceptors``: the wrappers that serve those calls (and capture items, skip sleeps);
- ``_mode``: the wrapper on the loop: a run from its start to its report.
"""

from __future__ import annotations

from ._interceptors import FetchInterceptor, Owner, SleepSkipper, SourceCapture
from ._mode import REPROBE_EVERY, PrefetchMode
from ._run import CURRENT, PrefetchRun

__all__ = ["CURRENT", "REPROBE_EVERY", "FetchInterceptor", "Owner", "PrefetchMode", "PrefetchRun", "SleepSkipper", "SourceCapture"]
