"""Local pins against PyPI's latest versions, through a small client class.

Modelled on Josheriff/version_matcher (check.py): read a requirements file given on the command
line, and for each line build the package's name and pinned version, make a ``PypiClient``
around requests and a ``PypiPackageVersionRetriever`` around it, and print the local version
beside the latest one. Ours keeps that shape (a client and a retriever per line) in a function;
PyPI's address comes from REALWORLD_API.
Shape: an SDK-style client class wrapping requests, made per item; items are lines the request
only uses part of.
"""

import sys

import requests

from version_checker.package_version_checker import package_and_version_builder
from version_checker.package_version_retriever import PypiClient, PypiPackageVersionRetriever


def check(lines):
    outdated = 0
    for line in lines:
        local_package = package_and_version_builder(line)
        retriever = PypiPackageVersionRetriever(PypiClient(requests))
        latest = retriever.retrieve_version(local_package["name"])
        flag = "" if latest == local_package["version"] else "  <- update"
        outdated += bool(flag)
        print(f"{local_package['name']:20} local {local_package['version']:10} latest {latest}{flag}")
    return outdated


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        lines = [x.strip() for x in f if x.strip()]
    print(check(lines), "packages to update")
