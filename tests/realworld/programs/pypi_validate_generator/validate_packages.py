"""Keep the package names that PyPI knows, with more than one release.

Modelled on posit-dev/positron (extensions/positron-python-environments/build/validate_packages.py):
read package names, ask PyPI's JSON API for each with urllib, and print those with more than
one release (an HTTPError means the package is not valid). Ours reads the names from
``package_list.txt`` through a generator (one name at a time, blank lines and comments
skipped) and writes the valid ones to ``valid_packages.txt``; PyPI's address comes from
REALWORLD_API.
Shape: a generator of items; urllib; a 404 per unknown name.
"""

import json
import os
import urllib.error
import urllib.request

PYPI = os.environ.get("REALWORLD_API", "https://pypi.org") + "/pypi/{0}/json"


def read_packages(path):
    with open(path) as f:
        for line in f:
            name = line.split("#")[0].strip()
            if name:
                yield name


def _get_pypi_package_data(package_name):
    with urllib.request.urlopen(PYPI.format(package_name), timeout=10) as response:
        return json.loads(response.read())


def validate_package(package):
    try:
        data = _get_pypi_package_data(package)
        return len(data["releases"]) > 1
    except urllib.error.HTTPError:
        return False


def validate_all(packages):
    valid = []
    for pkg in packages:
        if validate_package(pkg):
            print(pkg)
            valid.append(pkg)
    return valid


if __name__ == "__main__":
    valid = validate_all(read_packages("package_list.txt"))
    with open("valid_packages.txt", "w") as out:
        out.write("\n".join(valid) + "\n")
