"""``python -m sched_accel`` is the ``sched-accel`` command."""

from ._cli import main

raise SystemExit(main())
