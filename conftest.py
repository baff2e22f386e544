# The conformance plugin adds --cases, --results, --require and generates the checks.
pytest_plugins = ["conformance.pytest_plugin"]
