"""Open issues of several repositories, page by page, into SQLite (pull requests left out).

Modelled on austinsalinas4444/github-API-Integration-cli (github_cli.py): fetch a repository's
issues from the GitHub REST API with pagination, skip the pull requests GitHub lists among them,
store them in ``data.db`` and print "Synced N issues from owner/repo". Ours syncs a list of
repositories in one run through one ``httpx.Client`` with the token's headers; the API's
address comes from REALWORLD_API.
Shape: httpx's sync client; pagination nested in the per-item loop; the loop writes SQLite.
"""

import os
import sqlite3

import httpx

API = os.environ.get("REALWORLD_API", "https://api.github.com") + "/github"
REPOS = [("pallets", "flask"), ("psf", "requests"), ("encode", "httpx"), ("tiangolo", "fastapi"),
         ("django", "django"), ("pydantic", "pydantic"), ("python", "mypy"), ("pytest-dev", "pytest")]
PER_PAGE = 3


def sync(client, db, repos):
    total = 0
    for owner, repo in repos:
        page, synced = 1, 0
        while True:
            response = client.get(f"{API}/repos/{owner}/{repo}/issues",
                                  params={"state": "open", "per_page": PER_PAGE, "page": page})
            response.raise_for_status()
            issues = response.json()
            for issue in issues:
                if "pull_request" in issue:
                    continue
                db.execute("INSERT INTO issues VALUES (?, ?, ?, ?, ?)",
                           (f"{owner}/{repo}", issue["number"], issue["title"], issue["state"], issue["user"]["login"]))
                synced += 1
            if len(issues) < PER_PAGE:
                break
            page += 1
        db.commit()
        print(f"Synced {synced} issues from {owner}/{repo}")
        total += synced
    return total


if __name__ == "__main__":
    db = sqlite3.connect("data.db")
    db.execute("CREATE TABLE IF NOT EXISTS issues (repo TEXT, number INTEGER, title TEXT, state TEXT, author TEXT)")
    headers = {"Authorization": "Bearer ghp_token", "Accept": "application/vnd.github+json"}
    with httpx.Client(headers=headers, timeout=10) as client:
        print(sync(client, db, REPOS), "issues in all")
