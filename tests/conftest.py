"""Strict JAX for the whole suite, the hypothesis profile, the `thorough` checks, and JAX's caches per module.

Two profiles (README "Development"): `python -m pytest -n 2` runs the default one, which leaves out the checks
marked `thorough` (the 8 GiB cross entropy, multi-process training, mypy, the benchmark rows);
`python -m pytest -n 2 -m thorough` runs those. CI runs both. Any explicit `-m` expression chooses for itself.
`HYPOTHESIS_PROFILE=thorough` runs 10x more hypothesis examples.
"""

from __future__ import annotations

import gc
import os
import sys

# Tests run tiny shapes, so compiling is most of their time: XLA's backend optimisations (LLVM's) cost more than
# they save there. They change no result (no fast-math: floating point is not reassociated); the benchmarks and
# users keep the default.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402 - after XLA_FLAGS
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


def pytest_collection_modifyitems(config, items):
    """Without a `-m` expression, the `thorough` checks are deselected (reported as such, not skipped)."""
    if config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("thorough")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("thorough")]


@pytest.fixture(autouse=True, scope="module")
def _fresh_jax_caches():
    """Each test module starts from empty JAX caches: compiled programs do not pile up over a worker's life."""
    yield
    jax.clear_caches()
    gc.collect()


RESIDENT_STEP = 3 * 2**28
"""Resident bytes a worker may add (768 MiB) before a test's end clears JAX's caches (one module's programs
can pile up: the audiocraft goldens compile some 600); keeps each xdist worker under about 3 GB. Measured from
the last clear: freed memory stays resident (the allocator keeps it), so an absolute bound would clear after
every test."""
_RESIDENT_AT_CLEAR: list[int] = []


def _resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(autouse=True)
def _bounded_memory():
    if not _RESIDENT_AT_CLEAR:
        _RESIDENT_AT_CLEAR.append(_resident())
    yield
    if _resident() > _RESIDENT_AT_CLEAR[0] + RESIDENT_STEP:
        jax.clear_caches()
        gc.collect()
        _RESIDENT_AT_CLEAR[0] = _resident()
