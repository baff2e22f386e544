"""Settings of the conformance suite's own modules (hypothesis profiles for the property checks)."""
import os

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the property checks skip themselves without hypothesis
    HAVE_HYPOTHESIS = False
else:
    HAVE_HYPOTHESIS = True

if HAVE_HYPOTHESIS:
    # "ci" is deterministic (derandomized) and short; "nightly" explores far more inputs.
    _QUIET = [HealthCheck.too_slow, HealthCheck.differing_executors]
    settings.register_profile("ci", derandomize=True, max_examples=15, deadline=None, suppress_health_check=_QUIET)
    settings.register_profile("nightly", max_examples=400, deadline=None, suppress_health_check=_QUIET)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
