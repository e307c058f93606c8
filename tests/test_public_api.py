"""The public surface, and the rule that jax_patterns never imports torch."""

from __future__ import annotations

import subprocess
import sys

import jax_patterns
import jax_patterns.lm
import jax_patterns.presets
import torch_compat


def test_public_names():
    assert set(jax_patterns.__all__) == {
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
    }
    assert set(jax_patterns.lm.__all__) == {
        "UNKNOWN",
        "CodecLM",
        "ConditionedStepModel",
        "DecodeOptions",
        "Engine",
        "Generated",
        "magnet_cross_entropy",
        "magnet_fn_of",
        "magnet_generate",
        "magnet_inputs",
        "magnet_mask",
        "ModelStep",
        "Sampling",
        "StepInfo",
        "StepModel",
        "Stream",
        "compute_predictions",
        "condition_fn_of",
        "fused_packed_cross_entropy",
        "fused_pattern_cross_entropy",
        "generate",
        "packed_cross_entropy",
        "packed_segment_cross_entropy",
        "pattern_cross_entropy",
        "sample_next_token",
        "step_fn_of",
        "stream",
        "TwoLevelModel",
        "two_level_step",
        "two_level_step_of",
    }
    assert set(jax_patterns.presets.__all__) == {
        "IGNORE",
        "PRESETS",
        "BarkCoarse",
        "CSM",
        "Dia",
        "HiggsAudio",
        "KyutaiSTT",
        "Moshi",
        "MusicGen",
        "Orpheus",
        "ParlerTTS",
        "Qwen3OmniTalker",
        "from_transformers",
    }
    for name in jax_patterns.presets.__all__:
        assert hasattr(jax_patterns.presets, name), name
    for name in (*jax_patterns.__all__, *torch_compat.__all__):
        assert hasattr(jax_patterns, name) or hasattr(torch_compat, name), name


def test_jax_patterns_never_imports_torch_and_layouts_need_no_jax():
    code = (
        "import sys, numpy as np\n"
        "from jax_patterns import _layout, _providers, _indices\n"
        "assert 'jax' not in sys.modules, 'the layout layers import jax'\n"
        "import jax_patterns as jp, jax_patterns._cli, jax_patterns.lm\n"
        "p = jp.DelayedPatternProvider(4).get_pattern(8)\n"
        "p.build_pattern_sequence(np.zeros((1, 4, 8), np.int32), 0)\n"
        "assert 'torch' not in sys.modules, 'jax_patterns imported torch'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
