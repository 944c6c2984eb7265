"""The per-app secret that signs learned calls, and the digest it gives each entry.

``<app folder>/learned/secret`` (:mod:`._apps`) holds 32 random bytes (``secrets.token_bytes``),
created 0600 by the first run that saves learned calls, read under the same trust rule as the
rest; an app's learned calls are never replayed by another app, even of the same user. Each
learned entry carries HMAC-SHA256(secret, [format, target, arguments]), so an entry only
counts for the target it was recorded for, and only if one of our processes wrote it:
a hand-edited or copied-in entry fails its digest and is dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from typing import Any

from ._files import create_private
from ._trust import Refused, read_trusted

__all__ = ["SECRET_BYTES", "digest", "ensure_secret", "load_secret", "secret_path", "valid"]

SECRET_BYTES = 32
_TAG = "sched_accel.learned/2"


def secret_path(folder: str) -> str:
    """Where the secret of the learned calls in ``folder`` lives."""
    return os.path.join(folder, "secret")


def load_secret(path: str) -> bytes | None:
    """The secret; None when there is none yet; :class:`Refused` when it fails the trust rule."""
    data = read_trusted(path, limit=SECRET_BYTES)
    if data is not None and len(data) != SECRET_BYTES:
        raise Refused(
            path, f"holds {len(data)} bytes, not {SECRET_BYTES}", "delete it (the calls are then learned again)"
        )
    return data


def ensure_secret(path: str) -> bytes:
    """The secret, created first when there is none (another process may win the race)."""
    found = load_secret(path)
    if found is None:
        create_private(path, secrets.token_bytes(SECRET_BYTES))
        found = load_secret(path)
    if found is None:  # pragma: no cover - deleted between creating and reading
        raise OSError(f"{path}: the secret vanished as it was created")
    return found


def digest(secret: bytes, target: str, args: list[Any]) -> str:
    """The hex HMAC-SHA256 binding ``args`` to ``target`` (canonical JSON: sorted keys, ASCII)."""
    message = json.dumps([_TAG, target, args], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(secret, message.encode("ascii"), hashlib.sha256).hexdigest()


def valid(secret: bytes, target: str, args: list[Any], claimed: str) -> bool:
    """Whether ``claimed`` is the digest of ``args`` for ``target`` (compared in constant time)."""
    try:
        return claimed.isascii() and hmac.compare_digest(digest(secret, target, args), claimed)
    except (ValueError, RecursionError):  # nested too deep to encode again: not one we wrote
        return False
