"""The conformance matrix: one test per case x framework x dtype x device x quantity."""
from conformance.pytest.plugin import run_check


def test_check(check, conformance_runner):
    run_check(conformance_runner, check)
