"""jax_patterns.bench: `python -m jax_patterns bench`, one module per concern; each `bench_*` returns its rows."""

from jax_patterns.bench._command import add_arguments as add_arguments
from jax_patterns.bench._command import run as run
from jax_patterns.bench._engine import bench_engine as bench_engine
from jax_patterns.bench._generation import bench_generation as bench_generation
from jax_patterns.bench._generation import bench_serving as bench_serving
from jax_patterns.bench._losses import bench_cross_entropy as bench_cross_entropy
from jax_patterns.bench._losses import bench_fused as bench_fused
from jax_patterns.bench._magnet import bench_magnet as bench_magnet
from jax_patterns.bench._ops import bench_construction as bench_construction
from jax_patterns.bench._ops import bench_ops as bench_ops
from jax_patterns.bench._report import Row as Row
from jax_patterns.bench._training import bench_training as bench_training
from jax_patterns.bench._two_level import bench_two_level as bench_two_level

__all__ = (
    "Row",
    "add_arguments",
    "bench_construction",
    "bench_cross_entropy",
    "bench_engine",
    "bench_fused",
    "bench_generation",
    "bench_magnet",
    "bench_ops",
    "bench_serving",
    "bench_training",
    "bench_two_level",
    "run",
)
