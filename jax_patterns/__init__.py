"""jax_patterns: audiocraft's codebook interleaving patterns, exact and jit-compiled in JAX.

Three layers: plain-Python layouts (`Pattern`, one module per provider family)
-> static int32 index arrays (`jax_patterns._indices`) -> jitted gathers
(`jax_patterns._ops`). docs/design.md says how data flows.
"""

from jax_patterns._checks import check_lengths as check_lengths
from jax_patterns._coarse_first import CoarseFirstPattern as CoarseFirstPattern
from jax_patterns._coarse_first import VALLEPattern as VALLEPattern
from jax_patterns._delayed import DelayedPatternProvider as DelayedPatternProvider
from jax_patterns._delayed import ParallelPatternProvider as ParallelPatternProvider
from jax_patterns._layout import LayoutCoord as LayoutCoord
from jax_patterns._layout import Pattern as Pattern
from jax_patterns._layout import PatternLayout as PatternLayout
from jax_patterns._musiclm import MusicLMPattern as MusicLMPattern
from jax_patterns._packing import Packed as Packed
from jax_patterns._packing import pack as pack
from jax_patterns._packing import plan_rows as plan_rows
from jax_patterns._packing import segment as segment
from jax_patterns._packing import segment_steps as segment_steps
from jax_patterns._packing import unpack as unpack
from jax_patterns._plot import plot as plot
from jax_patterns._providers import FAMILIES as FAMILIES
from jax_patterns._providers import CodebooksPatternProvider as CodebooksPatternProvider
from jax_patterns._providers import LengthRule as LengthRule
from jax_patterns._unrolled import UnrolledPatternProvider as UnrolledPatternProvider
from jax_patterns._version import __version__ as __version__

__all__ = (
    "CoarseFirstPattern",
    "CodebooksPatternProvider",
    "DelayedPatternProvider",
    "FAMILIES",
    "LayoutCoord",
    "LengthRule",
    "MusicLMPattern",
    "Packed",
    "ParallelPatternProvider",
    "Pattern",
    "PatternLayout",
    "UnrolledPatternProvider",
    "VALLEPattern",
    "__version__",
    "check_lengths",
    "pack",
    "plan_rows",
    "plot",
    "segment",
    "segment_steps",
    "unpack",
)
