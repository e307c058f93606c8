"""The loss fused with the K output heads (issue 18): equal to the unfused loss and its gradients, never the logits."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import FAMILIES, compilations
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import examples

import jax_patterns as jp
from jax_patterns import lm

HERE = pathlib.Path(__file__).resolve().parent
RNG = np.random.default_rng(18)
D, CARD = 12, 16


def logits_of(hidden, heads, bias):
    out = jnp.einsum("bsd,kdc->bksc", hidden, heads)
    return out if bias is None else out + bias[None, :, None, :]


def inputs(batch, n_q, steps, *, bias=True, dtype=jnp.float32):
    hidden = jnp.asarray(RNG.normal(size=(batch, steps, D)), dtype)
    heads = jnp.asarray(RNG.normal(size=(n_q, D, CARD)) * 0.5, dtype)
    b = jnp.asarray(RNG.normal(size=(n_q, CARD)), dtype) if bias else None
    return hidden, heads, b


def assert_equal_losses(unfused, fused, args, rtol=2e-5, atol=1e-7):
    """Value and every gradient of two losses of (hidden, heads, bias) agree."""
    value = unfused(*args)
    np.testing.assert_allclose(np.asarray(fused(*args)), np.asarray(value), rtol=rtol, atol=atol)
    argnums = tuple(i for i, a in enumerate(args) if a is not None)
    g_unfused = jax.grad(unfused, argnums=argnums)(*args)
    g_fused = jax.grad(fused, argnums=argnums)(*args)
    for a, b in zip(g_fused, g_unfused):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol * 10, atol=atol * 10)


@pytest.mark.parametrize("provider", FAMILIES, ids=repr)
@pytest.mark.parametrize("kovs", [True, False])
@pytest.mark.parametrize("side", ["right", "left"])
def test_equals_the_unfused_loss_for_every_family_with_lengths(provider, kovs, side):
    timesteps = 7
    pattern = provider.get_pattern(timesteps)
    codes = RNG.integers(0, CARD, (3, provider.n_q, timesteps))
    lengths = np.array([7, 3, 0])
    steps = pattern.valid_steps if kovs else len(pattern)
    args = inputs(3, provider.n_q, steps)
    options = dict(keep_only_valid_steps=kovs, lengths=lengths, padding_side=side)

    def unfused(h, w, b):
        return lm.pattern_cross_entropy(logits_of(h, w, b), codes, pattern, **options)[1][0]

    def fused(h, w, b):
        return lm.fused_pattern_cross_entropy(h, w, codes, pattern, bias=b, block_steps=3, **options)[1][0]

    assert_equal_losses(unfused, fused, args)  # codebook 0: lengths 0 make the mean over codebooks NaN-free here


@pytest.mark.parametrize("average", ["codebooks", "tokens"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cut", [False, True])
def test_averages_bias_mask_and_the_inputs_less_their_last_step(average, bias, cut):
    pattern = jp.DelayedPatternProvider(4).get_pattern(9)
    codes = RNG.integers(0, CARD, (2, 4, 9))
    mask = RNG.random((2, 4, 9)) < 0.8
    steps = len(pattern) - (1 if cut else 0)
    args = inputs(2, 4, steps, bias=bias)
    options = dict(keep_only_valid_steps=False, mask=mask, average=average)

    def unfused(h, w, b):
        return lm.pattern_cross_entropy(logits_of(h, w, b), codes, pattern, **options)[0]

    def fused(h, w, b):
        return lm.fused_pattern_cross_entropy(h, w, codes, pattern, bias=b, **options)[0]

    assert_equal_losses(unfused, fused, args)


@pytest.mark.parametrize("block", [1, 2, 5, 64, None])
def test_every_block_size_gives_the_same_loss(block):
    pattern = jp.CoarseFirstPattern(3, [0, 1]).get_pattern(6)
    codes = RNG.integers(0, CARD, (2, 3, 6))
    hidden, heads, bias = inputs(2, 3, pattern.valid_steps)
    expected = lm.pattern_cross_entropy(logits_of(hidden, heads, bias), codes, pattern)[0]
    got = lm.fused_pattern_cross_entropy(hidden, heads, codes, pattern, bias=bias, block_steps=block)[0]
    np.testing.assert_allclose(float(got), float(expected), rtol=2e-6)


def test_traced_lengths_jit_vmap_and_no_recompile():
    pattern = jp.UnrolledPatternProvider(3, [0, 1, 1], [0, 2, 2]).get_pattern(6)
    codes = jnp.asarray(RNG.integers(0, CARD, (4, 3, 6)), jnp.int32)
    hidden, heads, bias = inputs(4, 3, pattern.valid_steps)
    lengths = jnp.asarray([6, 2, 5, 1], jnp.int32)

    @jax.jit
    def both(h, n):
        def fused_loss(x):
            return lm.fused_pattern_cross_entropy(x, heads, codes, pattern, bias=bias, lengths=n)[0]

        unfused = lm.pattern_cross_entropy(logits_of(h, heads, bias), codes, pattern, lengths=n)[0]
        return fused_loss(h), unfused, jax.grad(fused_loss)(h)

    fused, unfused, grad = both(hidden, lengths)
    np.testing.assert_allclose(float(fused), float(unfused), rtol=2e-6)
    assert np.isfinite(np.asarray(grad)).all()

    # vmap over examples: each example's loss alone
    def one_example(h, c, n):
        return lm.fused_pattern_cross_entropy(h[None], heads, c[None], pattern, bias=bias, lengths=n[None])[0]

    alone = jax.vmap(one_example)(hidden, codes, lengths)
    for b in range(4):
        one = lm.pattern_cross_entropy(
            logits_of(hidden[b : b + 1], heads, bias), codes[b : b + 1], pattern, lengths=lengths[b : b + 1]
        )[0]
        np.testing.assert_allclose(float(alone[b]), float(one), rtol=2e-6)

    def call():
        lm.fused_pattern_cross_entropy(hidden, heads, codes, pattern, bias=bias, lengths=lengths)[0].block_until_ready()

    call()
    assert compilations(call) == []


def test_packed_rows_equal_the_unfused_packed_loss():
    examples = [RNG.integers(0, CARD, (3, n)) for n in (5, 2, 7, 1)]
    packed = jp.pack(examples, jp.DelayedPatternProvider(3), row_steps=12, special_token=CARD)
    batch, n_q, steps = packed.targets.shape
    args = inputs(batch, n_q, steps)

    def unfused(h, w, b):
        return lm.packed_cross_entropy(logits_of(h, w, b), packed.targets)[0]

    def fused(h, w, b):
        return lm.fused_packed_cross_entropy(h, w, packed.targets, bias=b, block_steps=5)[0]

    assert_equal_losses(unfused, fused, args)


def test_bfloat16_accumulates_in_float32():
    pattern = jp.DelayedPatternProvider(4).get_pattern(20)
    codes = RNG.integers(0, CARD, (2, 4, 20))
    hidden, heads, bias = inputs(2, 4, pattern.valid_steps, dtype=jnp.bfloat16)
    as32 = [x.astype(jnp.float32) for x in (hidden, heads, bias)]
    exact = lm.pattern_cross_entropy(logits_of(*as32), codes, pattern)[0]
    fused = lm.fused_pattern_cross_entropy(hidden, heads, codes, pattern, bias=bias)[0]
    assert fused.dtype == jnp.float32
    np.testing.assert_allclose(float(fused), float(exact), rtol=1e-6)  # bf16 inputs, float32 logits: same loss
    grad = jax.grad(lambda h: lm.fused_pattern_cross_entropy(h, heads, codes, pattern, bias=bias)[0])(hidden)
    exact_grad = jax.grad(lambda h: lm.pattern_cross_entropy(logits_of(h, *as32[1:]), codes, pattern)[0])(as32[0])
    assert grad.dtype == jnp.bfloat16
    # the backward matmuls run in bfloat16 (accumulated in float32): a bfloat16 rounding, 2**-8 relative
    np.testing.assert_allclose(np.asarray(grad, np.float32), np.asarray(exact_grad), rtol=2e-2, atol=2e-4)


def test_no_logits_sized_buffer_in_the_compiled_program():
    batch, n_q, timesteps, card, dim = 4, 4, 1200, 1024, 8
    pattern = jp.DelayedPatternProvider(n_q).get_pattern(timesteps)
    steps = pattern.valid_steps
    codes = jnp.zeros((batch, n_q, timesteps), jnp.int32)
    hidden = jnp.zeros((batch, steps, dim), jnp.float32)
    heads = jnp.zeros((n_q, dim, card), jnp.float32)
    logits_bytes = batch * n_q * steps * card * 4

    def fused(h, w):
        return lm.fused_pattern_cross_entropy(h, w, codes, pattern, block_steps=8)[0]

    def unfused(h, w):
        return lm.pattern_cross_entropy(logits_of(h, w, None), codes, pattern)[0]

    programs: dict[str, tuple[int, str]] = {}
    for name, fn in (("fused", fused), ("unfused", unfused)):
        compiled = jax.jit(jax.value_and_grad(fn, argnums=(0, 1))).lower(hidden, heads).compile()
        analysis: tp.Any = compiled.memory_analysis()
        programs[name] = (int(analysis.temp_size_in_bytes), compiled.as_text() or "")
    assert programs["unfused"][0] >= logits_bytes  # the unfused program holds the logits (and more)
    block_bytes = batch * n_q * 8 * card * 4
    assert programs["fused"][0] < logits_bytes / 20, programs["fused"][0]  # a few blocks' logits, not all of them
    assert programs["fused"][0] < 8 * block_bytes + 8 * hidden.size * 4, programs["fused"][0]
    whole = f"f32[{batch},{n_q},{steps},{card}]"
    assert whole in programs["unfused"][1] and whole not in programs["fused"][1]


def test_bad_input():
    pattern = jp.DelayedPatternProvider(2).get_pattern(4)
    hidden, heads, bias = inputs(1, 2, pattern.valid_steps)
    codes = np.zeros((1, 2, 4), np.int32)
    call = lm.fused_pattern_cross_entropy
    with pytest.raises(ValueError, match=r"`heads` has K=3 codebooks but the pattern has n_q=2"):
        call(hidden, jnp.zeros((3, D, CARD)), codes, pattern)
    with pytest.raises(ValueError, match=r"`heads` has D=5 .* but `hidden` has D=12"):
        call(hidden, jnp.zeros((2, 5, CARD)), codes, pattern)
    with pytest.raises(ValueError, match=r"`hidden` has S=2 steps; the pattern needs S=5 or 4"):
        call(hidden[:, :2], heads, codes, pattern)
    with pytest.raises(TypeError, match=r"`codes` must hold integer codes, got dtype float64"):
        call(hidden, heads, codes.astype(float), pattern)
    with pytest.raises(ValueError, match=r"`codes`\[0, 1, 2\] = 16 is a target outside \[0, card=16\)"):
        call(hidden, heads, np.array([[[0, 0, 0, 0], [0, 0, 16, 0]]]), pattern)
    with pytest.raises(ValueError, match=r"`bias` has shape \(2,\); expected \[K, card\]"):
        call(hidden, heads, codes, pattern, bias=jnp.zeros(2))
    with pytest.raises(ValueError, match=r"`block_steps` must be >= 1, got 0"):
        call(hidden, heads, codes, pattern, block_steps=0)
    device = jnp.asarray([[[0, 0, 0, 0], [0, 0, 16, 0]]], jnp.int32)  # device codes are not read: NaN, not a number
    per = call(hidden, heads, device, pattern)[1]
    assert np.isfinite(float(per[0])) and np.isnan(float(per[1]))
    with pytest.raises(ValueError, match=r"`targets`\[0, 0, 0\] = 16; expected -1 or a code in \[0, card=16\)"):
        lm.fused_packed_cross_entropy(hidden, heads, np.full((1, 2, hidden.shape[1]), 16, np.int32))


def test_codec_lm_exposes_its_trunk_and_heads():
    from flax import nnx

    model = lm.CodecLM(3, CARD, dim=16, num_layers=1, num_heads=2, max_len=16, rngs=nnx.Rngs(0))
    pattern = jp.DelayedPatternProvider(3).get_pattern(6)
    codes = RNG.integers(0, CARD, (2, 3, 6))
    seq, _, _ = pattern.build_pattern_sequence(codes, CARD, keep_only_valid_steps=True)
    heads, bias = model.head_weights()
    assert heads.shape == (3, 16, CARD) and bias.shape == (3, CARD)
    np.testing.assert_allclose(np.asarray(logits_of(model.hidden(seq), heads, bias)), np.asarray(model(seq)),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    fused = lm.fused_pattern_cross_entropy(model.hidden(seq), heads, codes, pattern, bias=bias)[0]
    unfused = lm.pattern_cross_entropy(model(seq), codes, pattern)[0]
    np.testing.assert_allclose(float(fused), float(unfused), rtol=1e-5)


@pytest.fixture(scope="module")
def sharded() -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(HERE / "fused_sharding_check.py")], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("split", ["card", "codebooks"])
def test_vocabulary_and_codebook_parallel_equal_the_unsharded_loss(sharded, split):
    report = sharded[split]
    assert report["loss_close"] and report["grads_close"], report
    assert report["card_sized_gathers"] == [], report  # no logits or heads gathered across devices
    assert report["heads_grad_sharded"], report


# --- empty codebooks: the unfused gradient, never NaN (issue 25 item 5) ------------------------------------------
REDUCTIONS = {  # what a training step does with `(ce, per_codebook)` when a codebook may have nothing to score
    "nanmean": lambda ce, per: jnp.nanmean(per),
    "codebook 0": lambda ce, per: per[0],
    "guard": lambda ce, per: jnp.where(jnp.isnan(ce), 0.0, ce),
    "mean": lambda ce, per: ce,
}


def assert_same_gradients(unfused, fused, args):
    """Equal values (NaN where the unfused is NaN) and equal gradients (finite where the unfused ones are)."""
    np.testing.assert_allclose(np.asarray(fused(*args)), np.asarray(unfused(*args)), rtol=2e-5, atol=1e-6)
    argnums = tuple(i for i, a in enumerate(args) if a is not None)
    for a, b in zip(jax.grad(fused, argnums)(*args), jax.grad(unfused, argnums)(*args)):
        assert np.isfinite(np.asarray(b)).all()  # the unfused loss's gradient: finite under every reduction
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=1e-6)


@settings(max_examples=examples(15))
@given(
    provider=st.sampled_from(FAMILIES[:5]),
    timesteps=st.sampled_from([3, 5]),
    lengths=st.lists(st.integers(0, 5), min_size=2, max_size=2),
    masked=st.sampled_from(["none", "codebook 0", "all"]),
    kovs=st.booleans(),
    side=st.sampled_from(["right", "left"]),
    average=st.sampled_from(["codebooks", "tokens"]),
    reduction=st.sampled_from(sorted(REDUCTIONS)),
    seed=st.integers(0, 2**16),
)
def test_empty_codebooks_give_the_unfused_gradient(
    provider, timesteps, lengths, masked, kovs, side, average, reduction, seed
):
    rng = np.random.default_rng(seed)
    pattern = provider.get_pattern(timesteps)
    codes = rng.integers(0, CARD, (2, provider.n_q, timesteps))
    mask = np.ones(codes.shape, bool)
    if masked == "codebook 0":
        mask[:, 0] = False
    elif masked == "all":
        mask[:] = False
    steps = pattern.valid_steps if kovs else len(pattern)
    args = (
        jnp.asarray(rng.normal(size=(2, steps, D)), jnp.float32),
        jnp.asarray(rng.normal(size=(provider.n_q, D, CARD)), jnp.float32),
        jnp.asarray(rng.normal(size=(provider.n_q, CARD)), jnp.float32),
    )
    options = dict(
        keep_only_valid_steps=kovs,
        mask=mask,
        lengths=np.minimum(lengths, timesteps),
        padding_side=side,
        average=average,
    )
    reduce = REDUCTIONS[reduction]

    def unfused(h, w, b):
        return reduce(*lm.pattern_cross_entropy(logits_of(h, w, b), codes, pattern, **options))

    def fused(h, w, b):
        return reduce(*lm.fused_pattern_cross_entropy(h, w, codes, pattern, bias=b, block_steps=2, **options))

    assert_same_gradients(unfused, fused, args)


@pytest.mark.parametrize("reduction", sorted(REDUCTIONS))
@pytest.mark.parametrize("skip_empty", [False, True])
@pytest.mark.parametrize("empty", ["codebook 1", "all"])
def test_packed_empty_codebooks_give_the_unfused_gradient(reduction, skip_empty, empty):
    packed = jp.pack([RNG.integers(0, CARD, (3, n)) for n in (4, 2)], jp.DelayedPatternProvider(3), row_steps=9,
                     special_token=CARD)  # fmt: skip
    targets = packed.targets.copy()
    targets[:, slice(1, 2) if empty == "codebook 1" else slice(None)] = -1
    batch, n_q, steps = targets.shape
    reduce = REDUCTIONS[reduction]

    def unfused(h, w, b):
        return reduce(*lm.packed_cross_entropy(logits_of(h, w, b), targets, skip_empty=skip_empty))

    def fused(h, w, b):
        return reduce(*lm.fused_packed_cross_entropy(h, w, targets, bias=b, block_steps=4, skip_empty=skip_empty))

    assert_same_gradients(unfused, fused, inputs(batch, n_q, steps))


def test_no_steps_at_all():  # T = 0: every codebook is empty, and the pattern has its special step only
    pattern = jp.DelayedPatternProvider(3).get_pattern(0)
    codes = np.zeros((2, 3, 0), np.int32)
    for kovs in (True, False):
        steps = pattern.valid_steps if kovs else len(pattern)
        args = inputs(2, 3, steps)

        def unfused(h, w, b, kovs=kovs):
            return jnp.nanmean(
                lm.pattern_cross_entropy(logits_of(h, w, b), codes, pattern, keep_only_valid_steps=kovs)[1]
            )

        def fused(h, w, b, kovs=kovs):
            return jnp.nanmean(
                lm.fused_pattern_cross_entropy(h, w, codes, pattern, bias=b, keep_only_valid_steps=kovs)[1]
            )

        assert np.isnan(float(fused(*args)))
        assert_same_gradients(unfused, fused, args)


# --- every mix of floating dtypes, under strict promotion (issue 25 item 6) ---------------------------------------
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]


@pytest.mark.parametrize("bias_dtype", [None, *DTYPES], ids=lambda d: getattr(d, "__name__", "no bias"))
@pytest.mark.parametrize("heads_dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("hidden_dtype", DTYPES, ids=lambda d: d.__name__)
def test_every_dtype_mix_gives_the_loss_of_the_float32_casts(hidden_dtype, heads_dtype, bias_dtype):
    pattern = jp.DelayedPatternProvider(3).get_pattern(6)
    codes = RNG.integers(0, CARD, (2, 3, 6))
    hidden, heads, bias = inputs(2, 3, pattern.valid_steps, bias=bias_dtype is not None)
    args = (hidden.astype(hidden_dtype), heads.astype(heads_dtype), None if bias is None else bias.astype(bias_dtype))
    as32 = [None if x is None else x.astype(jnp.float32) for x in args]

    def fused(h, w, b):
        return lm.fused_pattern_cross_entropy(h, w, codes, pattern, bias=b, block_steps=4)[0]

    def unfused(h, w, b):
        return lm.pattern_cross_entropy(logits_of(h, w, b), codes, pattern)[0]

    value = fused(*args)
    assert value.dtype == jnp.float32
    np.testing.assert_allclose(float(value), float(unfused(*as32)), rtol=1e-6)  # every cast exact: the same loss
    argnums = tuple(i for i, a in enumerate(args) if a is not None)
    grads, exact = jax.grad(fused, argnums)(*args), jax.grad(unfused, argnums)(*as32)
    low = hidden_dtype == heads_dtype != jnp.float32  # the backward matmuls in bfloat16 / float16
    for i, g, e in zip(argnums, grads, exact):
        assert g.dtype == tp.cast(tp.Any, args[i]).dtype  # each gradient in its argument's own dtype
        e = np.asarray(e)
        if low:  # the logits' gradient rounded to the inputs' dtype once, then summed: cancellation, as before
            np.testing.assert_allclose(np.asarray(g, np.float32), e, rtol=2e-2, atol=2e-2 * np.abs(e).max())
        else:  # float32 matmuls; one rounding to the argument's own dtype (2**-8 relative for bfloat16)
            tol = 0.0 if tp.cast(tp.Any, args[i]).dtype == jnp.float32 else 1e-2
            np.testing.assert_allclose(np.asarray(g, np.float32), e, rtol=tol + 2e-5, atol=1e-6)


def test_matmul_dtype():
    from jax_patterns.lm._fused import matmul_dtype

    pairs = {
        (jnp.float32, jnp.float32): jnp.float32,
        (jnp.bfloat16, jnp.bfloat16): jnp.bfloat16,
        (jnp.bfloat16, jnp.float32): jnp.float32,
        (jnp.float32, jnp.float16): jnp.float32,
        (jnp.bfloat16, jnp.float16): jnp.float32,  # neither holds the other
    }
    for (a, b), expected in pairs.items():
        assert matmul_dtype(a, b) == matmul_dtype(b, a) == np.dtype(expected)


# --- found by an adversarial pass (issue 25 item 5 of the brief) ------------------------------------------------
def test_a_block_longer_than_the_sequence_is_one_program():
    pattern = jp.DelayedPatternProvider(2).get_pattern(4)
    hidden, heads, bias = inputs(1, 2, pattern.valid_steps)
    codes = RNG.integers(0, CARD, (1, 2, 4))
    assert pattern.valid_steps == 5
    first = lm.fused_pattern_cross_entropy(hidden, heads, codes, pattern, block_steps=5)[0]
    for block in (6, 2**31, 2**64):  # capped at S before the static key: no new program per huge value
        got: list = []

        def call(block=block, got=got):
            got.append(lm.fused_pattern_cross_entropy(hidden, heads, codes, pattern, block_steps=block)[0])
            got[-1].block_until_ready()

        assert compilations(call) == []  # its first call
        assert float(got[0]) == float(first)


@pytest.mark.parametrize("fused", [False, True])
def test_an_int64_mask_is_not_wrapped_to_false(fused):
    pattern = jp.DelayedPatternProvider(2).get_pattern(4)
    hidden, heads, bias = inputs(1, 2, pattern.valid_steps)
    codes = RNG.integers(0, CARD, (1, 2, 4))
    mask = np.full((1, 2, 4), 2**32, np.int64)  # nonzero: every code is real (an int32 cast would make it 0)

    def loss(m):
        if fused:
            return lm.fused_pattern_cross_entropy(hidden, heads, codes, pattern, bias=bias, mask=m)[0]
        return lm.pattern_cross_entropy(logits_of(hidden, heads, bias), codes, pattern, mask=m)[0]

    assert float(loss(mask)) == float(loss(None))
    with pytest.raises(TypeError, match=r"`mask` must be boolean \(True = a real code\), got dtype float64"):
        loss(np.ones((1, 2, 4)))  # a float weight would be rounded to a bool


def test_lm_modules_import_no_private_name_of_another():
    import ast

    import jax_patterns.lm

    root = pathlib.Path(jax_patterns.lm.__file__).parent
    for path in sorted(root.glob("*.py")):  # every module of lm (issue 28)
        name = path.name
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jax_patterns"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{name} imports {private} from {node.module}"
        for fn in ast.walk(tree):  # and no import hidden inside a function
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = [
                    n
                    for n in ast.walk(fn)
                    if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("jax_patterns")
                ]  # (an optional third-party package, as tqdm for a progress bar, is imported where it is used)
                assert not inner, f"{name}: {fn.name} imports inside its body"
