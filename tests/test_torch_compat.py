"""torch_compat: reference path vs goldens, conversions, DLPack exchange, the comparison report."""

from __future__ import annotations

import collections
import types

import golden_grid
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_same, provider_from

import jax_patterns as jp
import torch_compat as tc
from torch_compat import reference

GOLDENS = golden_grid.Goldens()


@pytest.mark.parametrize("entry", GOLDENS.manifest[::3], ids=lambda e: f"{e['id']}")
def test_reference_path_matches_audiocraft_goldens(entry):
    pattern = provider_from(entry["provider"], entry["kwargs"], entry["n_q"]).get_pattern(entry["timesteps"])
    n_q = entry["n_q"]
    for op in entry["ops"]:
        size, kovs = op["size"], op["keep_only_valid_steps"]
        if op["op"] == "build":
            out = reference.build_pattern_sequence(pattern, torch.from_numpy(golden_grid.codes(n_q, size)), -1, kovs)
        elif op["op"] == "revert":
            seq = torch.from_numpy(golden_grid.sequence(n_q, size))
            out = reference.revert_pattern_sequence(pattern, seq, -1, kovs)
        else:
            logits = torch.from_numpy(golden_grid.logits(n_q, size))
            out = reference.revert_pattern_logits(pattern, logits, float("nan"), kovs)
        for name, got in zip(("values", "indexes", "mask"), out):
            assert_same(got.numpy(), GOLDENS.array(op[name]), f"{op['op']} {name}")


# --- duck-typed stand-ins with audiocraft's class names and attributes --------------------------------------------
LayoutCoord = collections.namedtuple("LayoutCoord", ["t", "q"])
FlattenedCodebook = collections.namedtuple("FlattenedCodebook", ["codebooks", "delay"])


def fake(name: str, **attrs):
    return type(name, (), {})() if not attrs else _with(type(name, (), {})(), attrs)


def _with(obj, attrs):
    obj.__dict__.update(attrs)
    return obj


@pytest.mark.parametrize(
    "obj, expected",
    [
        (
            fake("DelayedPatternProvider", n_q=3, delays=[0, 2, 2], flatten_first=1, empty_initial=-1),
            jp.DelayedPatternProvider(3, [0, 2, 2], 1, -1),
        ),
        (
            fake("ParallelPatternProvider", n_q=2, delays=[0, 0], flatten_first=0, empty_initial=1),
            jp.ParallelPatternProvider(2, 1),
        ),
        (
            fake(
                "UnrolledPatternProvider",
                n_q=3,
                _flattened_codebooks={0: FlattenedCodebook([0], 0), 1: FlattenedCodebook([1, 2], 3)},
            ),
            jp.UnrolledPatternProvider(3, [0, 1, 1], [0, 3, 3]),
        ),
        (fake("VALLEPattern", n_q=3, delays=[0, 1]), jp.CoarseFirstPattern(3, [0, 1])),
        (fake("CoarseFirstPattern", n_q=3, delays=[1, 1]), jp.CoarseFirstPattern(3, [1, 1])),
        (fake("MusicLMPattern", n_q=4, group_by=4), jp.MusicLMPattern(4, 4)),
    ],
    ids=lambda x: type(x).__name__,
)
def test_from_audiocraft_providers(obj, expected):
    assert tc.from_audiocraft(obj) == expected


def test_from_audiocraft_pattern_and_custom_provider():
    layout = [[], [LayoutCoord(0, 0)], [LayoutCoord(1, 0), LayoutCoord(0, 1)], [LayoutCoord(2, 0), LayoutCoord(1, 1)]]
    ac_pattern = fake("Pattern", layout=layout, timesteps=2, n_q=2)
    pattern = tc.from_audiocraft(ac_pattern)
    assert pattern == jp.DelayedPatternProvider(2).get_pattern(2)
    omitted = tc.from_audiocraft(fake("Pattern", layout=[[LayoutCoord(0, 0)]], timesteps=1, n_q=1))
    assert not omitted.starts_with_special_token()

    class MyProvider:  # any object with n_q and get_pattern
        n_q = 2

        def get_pattern(self, timesteps):
            return fake("Pattern", layout=layout[: timesteps + 2], timesteps=timesteps, n_q=2)

    wrapped = tc.from_audiocraft(MyProvider())
    assert isinstance(wrapped, tc.AudiocraftProvider)
    assert wrapped.get_pattern(1).layout == pattern.layout[:3]
    assert tc.from_audiocraft(pattern) is pattern
    with pytest.raises(TypeError, match="`obj` of type int is neither"):
        tc.from_audiocraft(3)


class _FakePattern:
    def __init__(self, layout, timesteps, n_q):
        self.layout, self.timesteps, self.n_q = layout, timesteps, n_q


class _ModernFakePattern(_FakePattern):
    def starts_with_special_token(self) -> bool:
        return not self.layout[0]


def _fake_module(modern: bool) -> types.ModuleType:
    """A module with audiocraft's names whose provider classes record their arguments."""

    def recorder(name):
        def init(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

        return type(name, (), {"__init__": init})

    names = ["DelayedPatternProvider", "ParallelPatternProvider", "UnrolledPatternProvider", "MusicLMPattern"]
    names.append("CoarseFirstPattern" if modern else "VALLEPattern")
    module = types.ModuleType("fake_codebooks_patterns")
    module.__dict__.update({name: recorder(name) for name in names})
    module.__dict__.update(LayoutCoord=LayoutCoord, Pattern=_ModernFakePattern if modern else _FakePattern)
    return module


def test_to_audiocraft_builds_the_matching_objects():
    modern, old = _fake_module(True), _fake_module(False)
    made = tc.to_audiocraft(jp.DelayedPatternProvider(3, [0, 1, 1], 2, 1), modern)
    assert type(made).__name__ == "DelayedPatternProvider" and made.args == (3, [0, 1, 1], 2, 1)
    assert type(tc.to_audiocraft(jp.CoarseFirstPattern(3), old)).__name__ == "VALLEPattern"
    assert tc.to_audiocraft(jp.ParallelPatternProvider(2, -1), modern).kwargs == {"empty_initial": -1}
    assert tc.to_audiocraft(jp.UnrolledPatternProvider(2, [0, 0]), modern).args == (2, [0, 0], [0, 0])
    assert tc.to_audiocraft(jp.MusicLMPattern(4, 4), modern).args == (4, 4)
    pattern = tc.to_audiocraft(jp.DelayedPatternProvider(2).get_pattern(1), modern)
    assert tc.from_audiocraft(pattern) == jp.DelayedPatternProvider(2).get_pattern(1)
    with pytest.raises(ValueError, match="needs audiocraft >= 1.3.0"):
        tc.to_audiocraft(jp.DelayedPatternProvider(2, empty_initial=-1), old)
    with pytest.raises(ValueError, match="needs audiocraft >= 1.3.0"):
        tc.to_audiocraft(jp.ParallelPatternProvider(2, empty_initial=1), old)

    class Custom(jp.CodebooksPatternProvider):
        def get_pattern(self, timesteps):
            raise NotImplementedError

    with pytest.raises(TypeError, match="has no audiocraft equivalent"):
        tc.to_audiocraft(Custom(1), modern)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.int32, jnp.bfloat16, jnp.float16, jnp.int8])
def test_dlpack_exchange_is_zero_copy(dtype):
    x = jnp.arange(64).astype(dtype)
    t = tc.to_torch(x)
    assert t.data_ptr() == x.unsafe_buffer_pointer()
    np.testing.assert_array_equal(t.float().numpy(), np.asarray(x.astype(jnp.float32)))
    back = tc.to_jax(t)
    assert back.unsafe_buffer_pointer() == t.data_ptr()
    assert back.dtype == x.dtype


def test_non_contiguous_tensors_are_copied():
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4).T
    x = tc.to_jax(t)
    np.testing.assert_array_equal(np.asarray(x), t.numpy())
    assert isinstance(x, jax.Array)


def test_compare_passes_and_reports_the_first_mismatch(monkeypatch):
    results = tc.compare(jp.UnrolledPatternProvider(3, [0, 1, 1], [0, 2, 2]), timesteps=(0, 3))
    assert results and all(r.ok for r in results)
    assert {r.op for r in results} == {"build", "revert", "logits", "logits[card_axis=-1]"}
    table = tc.format_table(results)
    assert table.splitlines()[-1] == f"{len(results)} passed, 0 failed"

    real = reference.build_pattern_sequence

    def broken(pattern, z, special, kovs=False):
        values, indexes, mask = real(pattern, z, special, kovs)
        values = values.clone()
        values[0, 1, 2] = 99
        return values, indexes, mask

    monkeypatch.setattr(reference, "build_pattern_sequence", broken)
    failed = [r for r in tc.compare(jp.DelayedPatternProvider(2), timesteps=(4,)) if not r.ok]
    assert failed and failed[0].op == "build" and failed[0].mismatch is not None
    assert "values[0, 1, 2]: jax=" in failed[0].mismatch and "torch=99" in failed[0].mismatch
    assert f"FAIL {len(failed)}/{len(failed)}: build valid_only=False: values[0, 1, 2]: jax=" in tc.format_table(failed)
    assert "FAIL values[0, 1, 2]" in tc.format_table(failed, verbose=True)


def test_first_mismatch_reports_shapes_and_nans():
    assert tc.first_mismatch("x", np.array([np.nan, 1.0]), np.array([np.nan, 1.0])) is None
    assert tc.first_mismatch("x", np.zeros(2), np.zeros(3)) == "x: shape (2,) (jax) != (3,) (torch)"
    assert tc.first_mismatch("m", np.array([True, False]), np.array([True, True])) == ("m[1]: jax=False torch=True")


def test_to_jax_refuses_int64_values_that_int32_cannot_hold():
    import torch

    import torch_compat as tc

    with pytest.raises(ValueError, match=r"outside int32; JAX without x64"):
        tc.to_jax(torch.tensor([2**40]))
    assert tc.to_jax(torch.tensor([-5, 7])).tolist() == [-5, 7]
