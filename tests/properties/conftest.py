"""Hypothesis settings for the property, fuzz and hostile-input tests.

The ``ci`` profile (the default) is derandomized and keeps no example database, so every run
tries the same examples and a failure reproduces on the next run. ``HYPOTHESIS_PROFILE=explore``
searches with fresh random seeds (and keeps failures in .hypothesis/) when hunting for bugs."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
