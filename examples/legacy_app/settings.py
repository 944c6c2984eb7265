"""Settings, from the environment as the deployment sets them."""

from __future__ import annotations

import os

UPSTREAM_URL = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:8000")
#: Source B is another vendor; in the demo the same fake upstream plays it, reached by another name.
SOURCE_B_URL = os.environ.get("SOURCE_B_URL") or UPSTREAM_URL.replace("127.0.0.1", "localhost")
DATA_DIR = os.environ.get("LEGACY_APP_DATA", "data")

#: Source B allows one request every 0.5 s: the collector pauses this long between coins.
COLLECT_PAUSE_SECONDS = float(os.environ.get("COLLECT_PAUSE_SECONDS", "0.5"))

#: The cron line gives the prediction run this long before the next one starts.
PREDICTION_DEADLINE_SECONDS = float(os.environ.get("PREDICTION_DEADLINE_SECONDS", "60"))


def data_path(name: str) -> str:
    os.makedirs(DATA_DIR, exist_ok=True)
    return os.path.join(DATA_DIR, name)
