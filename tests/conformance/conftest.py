import os

from hypothesis import HealthCheck, settings

# "ci" is deterministic (derandomized) and short; "nightly" explores far more inputs.
settings.register_profile("ci", derandomize=True, max_examples=15, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
settings.register_profile("nightly", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
