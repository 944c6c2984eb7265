"""__init__.py: ``sched_accel.__all__`` is exactly the public surface, like httpx's test of the same name."""

from __future__ import annotations

import sched_accel


def test_all_is_sorted() -> None:
    """__all__ is kept sorted, without duplicates."""
    assert sched_accel.__all__ == sorted(set(sched_accel.__all__))


def test_all_imports_are_exported() -> None:
    """Every public name in the package namespace is in __all__ and every name in __all__ exists there."""
    included_private_members = ["__version__"]
    public = sorted(name for name in vars(sched_accel) if not name.startswith("_") or name in included_private_members)
    assert sched_accel.__all__ == public


def test_exported_members_are_defined_by_the_package() -> None:
    """Every exported object comes from sched_accel itself, not a re-exported third-party name."""
    for name in sched_accel.__all__:
        if name == "__version__":
            continue
        assert getattr(sched_accel, name).__module__.startswith("sched_accel."), name
