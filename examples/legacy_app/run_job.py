"""The old cron entry point: ``python -m legacy_app.run_job [DB_PATH]`` scores the cold tokens once."""

from __future__ import annotations

import logging
import sys
import time

from legacy_app.jobs import update_scores


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    db_path = sys.argv[1] if len(sys.argv) > 1 else "scores.db"
    started = time.perf_counter()
    saved = update_scores("cold", db_path)
    print(f"saved={saved} seconds={time.perf_counter() - started:.3f}")


if __name__ == "__main__":
    main()
