"""Up or down: the HTTP status of a list of URLs, with running counts.

Modelled on derrekyoung/url-checker-python (generic-url-checker.py): iterate over a list of URLs
at the top of the script and report each one's HTTP status code, "DOWN" for the unreachable.
Ours keeps the counts in a module-level Counter that each check updates (up, down, by status),
prints a summary, and logs each check through the stdlib's logging to stderr; the sites live
under REALWORLD_API, and one URL points at a port where nothing listens.
Shape: a counter outside the per-item function; an unreachable URL; a 503 and a 404.
"""

import logging
import os
import sys
from collections import Counter

import requests

BASE = os.environ.get("REALWORLD_API", "https://example.com")
URLS = [BASE + f"/sites/{name}/health" for name in
        ["shop", "api", "docs", "status-page", "admin", "cdn", "old-blog", "search", "billing", "auth"]]
URLS.insert(5, "http://127.0.0.1:9/health")  # the discard port: nothing listens there

STATS = Counter()
log = logging.getLogger("urlchecker")


def check(url):
    try:
        status = requests.get(url, timeout=5).status_code
    except requests.exceptions.ConnectionError:
        STATS["down"] += 1
        log.warning("%s is DOWN", url)
        return "DOWN"
    STATS["up" if status < 400 else "failing"] += 1
    STATS[f"status_{status}"] += 1
    log.info("%s answered %s", url, status)
    return status


def check_all(urls):
    for url in urls:
        print(url.replace(BASE, "<site>"), check(url))
    return dict(sorted(STATS.items()))


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
    print(check_all(URLS))
