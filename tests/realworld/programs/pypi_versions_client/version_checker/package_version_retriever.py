"""A small client for PyPI's JSON API, and the retriever the checker asks."""

import os

PYPI = os.environ.get("REALWORLD_API", "https://pypi.org") + "/pypi/{name}/json"


class PypiClient:
    def __init__(self, http):
        self._http = http  # the requests module, or anything with its get()

    def project(self, name):
        response = self._http.get(PYPI.format(name=name), headers={"Accept": "application/json"}, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()


class PypiPackageVersionRetriever:
    def __init__(self, client):
        self.client = client

    def retrieve_version(self, name):
        project = self.client.project(name)
        return project["info"]["version"] if project else "not on PyPI"
