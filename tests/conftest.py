"""Strict JAX for the whole suite, and the hypothesis profile."""

from __future__ import annotations

import os
import sys

import jax
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))  # golden_grid and helpers

# a script run in a subprocess with 8 host devices: importing it (doctest collection) would give this process 8 too
collect_ignore = ["sharding_check.py", "fused_sharding_check.py"]

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("thorough", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def goldens():
    import golden_grid

    return golden_grid.Goldens()
