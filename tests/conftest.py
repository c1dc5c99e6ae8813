import os

from hypothesis import HealthCheck, settings

# CI runs a fixed, reproducible set of examples; locally Hypothesis explores.
settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# A seed-dependence run (CI's second Hypothesis pass, a local seed sweep):
# explores like "dev" but with no example database, so nothing earlier is
# replayed and nothing is left behind; pass --hypothesis-seed=N to reproduce.
settings.register_profile(
    "random", parent=settings.get_profile("dev"), database=None, print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
