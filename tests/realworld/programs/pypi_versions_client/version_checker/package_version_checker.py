def package_and_version_builder(line):
    name, _, version = line.partition("==")
    return {"name": name.strip(), "version": version.strip() or "?"}
