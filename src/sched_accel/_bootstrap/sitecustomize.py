"""Put on PYTHONPATH by ``sched-accel run``: runs the start-up hook, then the app's own
``sitecustomize`` if there is one further along ``sys.path``."""

import os
import sys


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        import _sched_accel_boot

        _sched_accel_boot.boot()
    except ImportError:
        sys.stderr.write(
            "sched_accel.not_importable python=" + sys.executable + " - sched-accel run started a "
            "Python that does not have sched_accel installed; install it there\n"
        )
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    ours = sys.modules.pop("sitecustomize")
    try:
        __import__("sitecustomize")  # the app's own, if any (unknown to the type checker)
    except ImportError:
        # None: this module stands as sitecustomize (site's own `import sitecustomize` looks it
        # up once this returns; without it: "Error in sitecustomize ... KeyError").
        sys.modules["sitecustomize"] = ours
    finally:
        sys.path[:] = saved


_chain()
