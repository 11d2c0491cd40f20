"""Hypothesis settings for the parser fuzz tests: ``ci`` by default, ``SUBMETER_FUZZ=soak`` for a long run.

The profiles are applied per test (``@FUZZ``), not loaded globally, so other
tests keep hypothesis' defaults. No example database: nothing is written into
the checkout, and a failure prints the example to reproduce it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "soak",
    max_examples=5_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

FUZZ = settings.get_profile(os.environ.get("SUBMETER_FUZZ", "ci"))
