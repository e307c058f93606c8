"""jax_patterns.lm: using a pattern in a Flax codec LM.

Training predictions and losses (fused or not, padded or packed), generation and streaming (`generate`,
`stream`), continuous batching over per-slot timelines (`Engine`), all three on one decode core
(`_decode.py`) driven by a step function or a model implementing the step-model protocol (`StepModel`),
a two-level (depth) decoder's compiled step (`two_level_step`),
and MAGNeT's masked non-autoregressive decoding and training step (`magnet_generate`, `magnet_mask`,
`magnet_inputs`, `magnet_cross_entropy`).
"""

from jax_patterns.lm._decode import UNKNOWN as UNKNOWN
from jax_patterns.lm._decode import StepInfo as StepInfo
from jax_patterns.lm._engine import Engine as Engine
from jax_patterns.lm._fused import fused_packed_cross_entropy as fused_packed_cross_entropy
from jax_patterns.lm._fused import fused_pattern_cross_entropy as fused_pattern_cross_entropy
from jax_patterns.lm._generate import Generated as Generated
from jax_patterns.lm._generate import generate as generate
from jax_patterns.lm._magnet_decode import magnet_generate as magnet_generate
from jax_patterns.lm._magnet_train import magnet_cross_entropy as magnet_cross_entropy
from jax_patterns.lm._magnet_train import magnet_inputs as magnet_inputs
from jax_patterns.lm._magnet_train import magnet_mask as magnet_mask
from jax_patterns.lm._model import CodecLM as CodecLM
from jax_patterns.lm._options import DecodeOptions as DecodeOptions
from jax_patterns.lm._protocol import ConditionedStepModel as ConditionedStepModel
from jax_patterns.lm._protocol import ModelStep as ModelStep
from jax_patterns.lm._protocol import StepModel as StepModel
from jax_patterns.lm._protocol import condition_fn_of as condition_fn_of
from jax_patterns.lm._protocol import magnet_fn_of as magnet_fn_of
from jax_patterns.lm._protocol import step_fn_of as step_fn_of
from jax_patterns.lm._sampling import Sampling as Sampling
from jax_patterns.lm._sampling import sample_next_token as sample_next_token
from jax_patterns.lm._stream import Stream as Stream
from jax_patterns.lm._stream import stream as stream
from jax_patterns.lm._train import compute_predictions as compute_predictions
from jax_patterns.lm._train import packed_cross_entropy as packed_cross_entropy
from jax_patterns.lm._train import packed_segment_cross_entropy as packed_segment_cross_entropy
from jax_patterns.lm._train import pattern_cross_entropy as pattern_cross_entropy
from jax_patterns.lm._two_level import TwoLevelModel as TwoLevelModel
from jax_patterns.lm._two_level import two_level_step as two_level_step
from jax_patterns.lm._two_level import two_level_step_of as two_level_step_of

__all__ = (
    "UNKNOWN",
    "CodecLM",
    "ConditionedStepModel",
    "DecodeOptions",
    "Engine",
    "Generated",
    "ModelStep",
    "Sampling",
    "StepInfo",
    "StepModel",
    "Stream",
    "TwoLevelModel",
    "compute_predictions",
    "condition_fn_of",
    "fused_packed_cross_entropy",
    "fused_pattern_cross_entropy",
    "generate",
    "magnet_cross_entropy",
    "magnet_fn_of",
    "magnet_generate",
    "magnet_inputs",
    "magnet_mask",
    "packed_cross_entropy",
    "packed_segment_cross_entropy",
    "pattern_cross_entropy",
    "sample_next_token",
    "step_fn_of",
    "stream",
    "two_level_step",
    "two_level_step_of",
)
