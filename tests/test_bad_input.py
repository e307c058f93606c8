"""The public API with bad values: every entry point raises ValueError/TypeError naming the argument (issue 17).

Each row is (entry point, the argument it gets wrong, a call that puts the bad value there); every bad value of
the row's kind (None, floats, bools, out-of-range ints, negative sizes, wrong shapes) must raise `ValueError` or
`TypeError` whose message names the argument. The command line's rows are in `test_cli.py` and `test_train.py`
(one line on stderr, exit 2).
"""

from __future__ import annotations

import typing as tp

import jax
import numpy as np
import pytest
from flax import nnx

import jax_patterns as jp
from jax_patterns import lm, presets

P = jp.DelayedPatternProvider(2)
PAT = P.get_pattern(4)
FLAT = jp.DelayedPatternProvider(2, [0, 0], flatten_first=1 << 20, empty_initial=-1).get_pattern(3)
CODES = np.zeros((1, 2, 4), np.int32)
SEQ = np.asarray(PAT.build_pattern_sequence(CODES, 8)[0])
LOGITS = np.zeros((1, 2, len(PAT), 8), np.float32)
HIDDEN = np.zeros((1, PAT.valid_steps, 4), np.float32)  # the fused losses: trunk output and K heads
HEADS = np.zeros((2, 4, 8), np.float32)
CSM = presets.CSM(2, 10, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=9)
PACKED = jp.pack([CODES[0]], P, row_steps=8, special_token=8)
PLOGITS = np.zeros((1, 2, 8, 8), np.float32)  # logits on the packed row


def step_fn(state, tokens):
    return jax.nn.one_hot(tokens[:, :, -1] % 8, 8), state


def generate(**options):
    base = dict(special_token=8, key=jax.random.key(0))
    return lm.generate(step_fn, 0, PAT, np.zeros((1, 2, 1), np.int32), **{**base, **options}).codes


def returns_its_tokens_as_logits(tokens, stage):  # a named function: its repr (the test id) has no address early
    return tokens


def magnet(**options):
    base = dict(
        model_fn=lambda tokens, stage: jax.nn.one_hot(tokens % 8, 8),
        prompt=np.zeros((1, 2, 1), np.int32),
        timesteps=6,
        mask_token=8,
        key=jax.random.key(0),
        decoding_steps=(2, 2),
    )
    merged = {**base, **options}
    return lm.magnet_generate(merged.pop("model_fn"), merged.pop("prompt"), **merged)


def zero_logits(seq):  # named functions: their repr (the test id) has no address early
    return np.zeros((*seq.shape, 8), np.float32)


def logits_one_step_short(seq):
    return np.zeros((*seq.shape[:-1], seq.shape[-1] - 1, 8), np.float32)


def int_logits(seq):
    return np.zeros((*seq.shape, 8), np.int32)


def state_without_slot_axis(batch):  # named functions: their repr (the test id) has no address early
    return np.zeros(())


def state_with_one_row_too_many(batch):
    return np.zeros(batch + 1)


def engine(**options):
    base = dict(
        step_fn=step_fn,
        init_state=lambda b: np.zeros(b, np.int32),
        pattern_provider=P,
        slots=2,
        max_timesteps=6,
        special_token=8,
    )
    merged = {**base, **options}
    return lm.Engine(merged.pop("step_fn"), merged.pop("init_state"), merged.pop("pattern_provider"), **merged)


MASK = np.zeros((1, 4), bool)
MLOGITS = np.zeros((1, 2, 4, 8), np.float32)
TOKEN = [None, 4.7, True, 2**40, "8"]  # a token id: an int that int32 codes hold
LENGTHS = [None, 2.5, True, -1, 5, [1, 2], np.array([1.0])]  # one length per example, in [0, T]
SIZE = [None, 2.5, True, -1, 0]  # a positive int
FLAG = [None, 1, "yes"]

ROWS: list[tuple[str, str, list, tp.Callable]] = [
    # the operations
    ("build_pattern_sequence", "special_token", TOKEN, lambda v: PAT.build_pattern_sequence(CODES, v)),
    ("build_pattern_sequence", "fill_after", TOKEN[1:], lambda v: PAT.build_pattern_sequence(CODES, 8, fill_after=v)),
    ("build_pattern_sequence", "lengths", LENGTHS[1:], lambda v: PAT.build_pattern_sequence(CODES, 8, lengths=v)),
    ("build_pattern_sequence", "keep_only_valid_steps", FLAG, lambda v: PAT.build_pattern_sequence(CODES, 8, v)),
    ("revert_pattern_sequence", "special_token", TOKEN, lambda v: PAT.revert_pattern_sequence(SEQ, v)),
    ("revert_pattern_sequence", "lengths", LENGTHS[1:], lambda v: PAT.revert_pattern_sequence(SEQ, 8, lengths=v)),
    ("revert_pattern_logits", "card_axis", [None, 1.0, True, 7], lambda v: PAT.revert_pattern_logits(LOGITS, 0.0,
                                                                                                    card_axis=v)),
    ("to_stream", "special_token", TOKEN, lambda v: FLAT.to_stream(np.zeros((2, 6), np.int32), [0, 100], v)),
    ("to_stream", "offsets", [None, [0], [0.5, 1], [0, 2**40]], lambda v: FLAT.to_stream(np.zeros((2, 6), np.int32),
                                                                                        v, -1)),
    ("to_stream", "card", SIZE[1:], lambda v: FLAT.to_stream(np.zeros((2, 6), np.int32), [0, 100], -1, card=v)),
    ("from_stream", "offsets", [None, [0], [0.5, 1]], lambda v: FLAT.from_stream(np.zeros(6, np.int32), v, -1)),
    # providers
    ("DelayedPatternProvider", "n_q", SIZE, lambda v: jp.DelayedPatternProvider(v)),
    ("DelayedPatternProvider", "delays", [[0, -1], [0.5, 1], [0]], lambda v: jp.DelayedPatternProvider(2, v)),
    ("get_pattern", "timesteps", [None, 2.5, True, -1], lambda v: P.get_pattern(v)),
    # packing
    ("pack", "special_token", TOKEN, lambda v: jp.pack([CODES[0]], P, row_steps=8, special_token=v)),
    ("pack", "row_steps", SIZE, lambda v: jp.pack([CODES[0]], P, row_steps=v, special_token=8)),
    ("pack", "max_segments", SIZE[1:], lambda v: jp.pack([CODES[0]], P, row_steps=8, special_token=8,
                                                        max_segments=v)),
    ("pack", "rows", [2.5, True, -1], lambda v: jp.pack([CODES[0]], P, row_steps=8, special_token=8, rows=v)),
    ("segment", "special_token", TOKEN, lambda v: jp.segment(CODES[0], P, v)),
    ("plan_rows", "steps[0]", [None, 2.5, True, -1, 0], lambda v: jp.plan_rows([v], 8)),
    ("plan_rows", "row_steps", SIZE, lambda v: jp.plan_rows([1], v)),
    ("unpack", "special_token", [None, 4.7, 2**40], lambda v: jp.unpack(jp.pack([CODES[0]], P, row_steps=8,
                                                                                special_token=8).tokens,
                                                                        jp.pack([CODES[0]], P, row_steps=8,
                                                                                special_token=8), v)),
    ("unpack", "return_mask", FLAG, lambda v: jp.unpack(PACKED.tokens, PACKED, return_mask=v)),
    ("unpack", "model_output", FLAG, lambda v: jp.unpack(PACKED.tokens, PACKED, model_output=v)),
    # lm
    ("generate", "special_token", TOKEN, lambda v: generate(special_token=v)),
    ("generate", "fill_after", TOKEN[1:], lambda v: generate(fill_after=v)),
    ("generate", "eos_token", [4.7, True, -1, 2**40], lambda v: generate(eos_token=v)),
    ("generate", "prompt_lengths", LENGTHS[1:], lambda v: generate(prompt_lengths=v)),
    ("generate", "temp", [None, True, -1.0, float("inf"), [1.0, 2.0], "1"], lambda v: generate(temp=v)),
    ("generate", "top_k", [None, 2.5, True, -1, [1, 2]], lambda v: generate(top_k=v)),
    ("generate", "top_p", [None, True, -0.1, 1.5, [0.5, 0.5]], lambda v: generate(top_p=v)),
    ("generate", "cfg_coef", [True, float("nan"), [1.0, 2.0]], lambda v: generate(cfg_coef=v)),
    ("generate", "use_sampling", FLAG, lambda v: generate(use_sampling=v)),
    ("generate", "step_info", FLAG, lambda v: generate(step_info=v)),
    ("generate", "sampling", [(1.0, 0, 0.0, None), 3], lambda v: generate(sampling=v)),
    ("generate", "key", [3, np.zeros(2), jax.random.split(jax.random.key(0), 2)], lambda v: generate(key=v)),
    ("generate", "options", [3, {"special_token": 8}], lambda v: lm.generate(step_fn, 0, PAT, CODES[:, :, :1], v)),
    ("generate", "prompt", [None, np.full((1, 2, 1), 2**32 + 8), np.full((1, 2, 1), -1), np.zeros((1, 2, 1))],
     lambda v: lm.generate(step_fn, 0, PAT, v, special_token=8)),
    ("DecodeOptions", "step_returns", [None, "probs", 3], lambda v: lm.DecodeOptions(8, step_returns=v)),
    ("DecodeOptions", "sampling", [3, (1.0, 0, 0.0, None)], lambda v: lm.DecodeOptions(8, sampling=v)),
    ("step_fn_of", "model", [None, 3, step_fn], lambda v: lm.step_fn_of(v)),
    ("condition_fn_of", "model", [None, 3], lambda v: lm.condition_fn_of(v)),
    ("CodecLM", "n_q", SIZE, lambda v: lm.CodecLM(v, 8, dim=4, num_layers=1, num_heads=2, rngs=nnx.Rngs(0))),
    ("CodecLM", "card", SIZE, lambda v: lm.CodecLM(2, v, dim=4, num_layers=1, num_heads=2, rngs=nnx.Rngs(0))),
    ("CodecLM", "max_len", SIZE, lambda v: lm.CodecLM(2, 8, dim=4, max_len=v, num_heads=2, rngs=nnx.Rngs(0))),
    ("CodecLM", "num_heads", SIZE + [3], lambda v: lm.CodecLM(2, 8, dim=4, num_layers=1, num_heads=v,
                                                             rngs=nnx.Rngs(0))),
    ("CodecLM", "dim", SIZE, lambda v: lm.CodecLM(2, 8, dim=v, num_layers=1, num_heads=1, rngs=nnx.Rngs(0))),
    ("stream", "chunk_steps", SIZE, lambda v: lm.stream(step_fn, 0, PAT, np.zeros((1, 2, 1), np.int32),
                                                        special_token=8, chunk_steps=v)),
    ("pattern_cross_entropy", "lengths", LENGTHS[1:],
     lambda v: lm.pattern_cross_entropy(LOGITS, CODES, PAT, keep_only_valid_steps=False, lengths=v)),
    ("packed_cross_entropy", "skip_empty", FLAG, lambda v: lm.packed_cross_entropy(LOGITS, SEQ * 0 - 1,
                                                                                       skip_empty=v)),
    ("sample_next_token", "top_k", [], lambda v: None),
    ("fused_pattern_cross_entropy", "block_steps", SIZE[1:],
     lambda v: lm.fused_pattern_cross_entropy(HIDDEN, HEADS, CODES, PAT, block_steps=v)),
    ("fused_pattern_cross_entropy", "lengths", LENGTHS[1:],
     lambda v: lm.fused_pattern_cross_entropy(HIDDEN, HEADS, CODES, PAT, lengths=v)),
    ("fused_pattern_cross_entropy", "heads", [None, np.zeros((3, 4, 8)), np.zeros((2, 5, 8)), np.zeros((2, 4))],
     lambda v: lm.fused_pattern_cross_entropy(HIDDEN, v, CODES, PAT)),
    ("fused_pattern_cross_entropy", "hidden", [None, np.zeros((1, 2, 4)), np.zeros((1, 5, 4), np.int32)],
     lambda v: lm.fused_pattern_cross_entropy(v, HEADS, CODES, PAT)),
    ("fused_pattern_cross_entropy", "keep_only_valid_steps", FLAG,
     lambda v: lm.fused_pattern_cross_entropy(HIDDEN, HEADS, CODES, PAT, keep_only_valid_steps=v)),
    ("fused_packed_cross_entropy", "skip_empty", FLAG,
     lambda v: lm.fused_packed_cross_entropy(HIDDEN, HEADS, np.full((1, 2, 5), -1, np.int32), skip_empty=v)),
    ("fused_packed_cross_entropy", "targets", [None, np.zeros((1, 2, 3), np.int32), np.zeros((1, 2, 5)),
                                               np.full((1, 2, 5), 8, np.int32)],
     lambda v: lm.fused_packed_cross_entropy(HIDDEN, HEADS, v)),
    ("pattern_cross_entropy", "pattern", [None, 3, P], lambda v: lm.pattern_cross_entropy(LOGITS, CODES, v)),
    ("pattern_cross_entropy", "logits_seq", [None, np.zeros((1, 2, 6)), np.zeros((1, 2, 4, 8)),
                                             np.zeros((1, 2, 6, 8), np.int32)],
     lambda v: lm.pattern_cross_entropy(v, CODES, PAT, keep_only_valid_steps=False)),
    ("pattern_cross_entropy", "codes", [None, np.zeros((1, 2, 4)), CODES > 0, np.zeros((1, 2, 3), np.int32),
                                        np.full((1, 2, 4), 2**40)],
     lambda v: lm.pattern_cross_entropy(LOGITS, v, PAT, keep_only_valid_steps=False)),
    ("pattern_cross_entropy", "mask", [np.ones((1, 2, 4)), np.ones((1, 2, 3), bool)],
     lambda v: lm.pattern_cross_entropy(LOGITS, CODES, PAT, keep_only_valid_steps=False, mask=v)),
    ("pattern_cross_entropy", "average", [None, "mean", 1], lambda v: lm.pattern_cross_entropy(
        LOGITS, CODES, PAT, keep_only_valid_steps=False, average=v)),
    ("pattern_cross_entropy", "padding_side", [None, "up"], lambda v: lm.pattern_cross_entropy(
        LOGITS, CODES, PAT, keep_only_valid_steps=False, padding_side=v)),
    ("pattern_cross_entropy", "keep_only_valid_steps", FLAG,
     lambda v: lm.pattern_cross_entropy(LOGITS, CODES, PAT, keep_only_valid_steps=v)),
    ("fused_pattern_cross_entropy", "pattern", [None, 3, P],
     lambda v: lm.fused_pattern_cross_entropy(HIDDEN, HEADS, CODES, v)),
    ("fused_pattern_cross_entropy", "bias", [np.zeros(2), np.zeros((2, 8), np.int32)],
     lambda v: lm.fused_pattern_cross_entropy(HIDDEN, HEADS, CODES, PAT, bias=v)),
    ("fused_pattern_cross_entropy", "mask", [np.ones((1, 2, 4)), np.ones((1, 2, 3), bool)],
     lambda v: lm.fused_pattern_cross_entropy(HIDDEN, HEADS, CODES, PAT, mask=v)),
    ("fused_pattern_cross_entropy", "codes", [None, np.zeros((1, 2, 4)), np.full((1, 2, 4), 2**40)],
     lambda v: lm.fused_pattern_cross_entropy(HIDDEN, HEADS, v, PAT)),
    ("compute_predictions", "pattern", [None, 3, P], lambda v: lm.compute_predictions(zero_logits, CODES, v, 8)),
    ("compute_predictions", "apply_fn", [None, 3, logits_one_step_short, int_logits],
     lambda v: lm.compute_predictions(v, CODES, PAT, 8)),
    ("compute_predictions", "codes", [None, np.zeros((2, 4), np.int32), np.zeros((1, 2, 4)), CODES[..., :3],
                                      np.full((1, 2, 4), 2**40)],
     lambda v: lm.compute_predictions(zero_logits, v, PAT, 8)),
    ("compute_predictions", "keep_only_valid_steps", FLAG, lambda v: lm.compute_predictions(zero_logits, CODES, PAT, 8,
                                                                                              v)),
    ("packed_segment_cross_entropy", "segments", [None, 2.5, True, 0, -1, 2**31, 2**64],
     lambda v: lm.packed_segment_cross_entropy(PLOGITS, PACKED.targets, PACKED.segment_ids, v)),
    ("packed_segment_cross_entropy", "segment_ids", [None, np.zeros((1, 8)), np.full((1, 8), 2), np.zeros((1, 8), int),
                                                     np.zeros((1, 7), np.int32)],
     lambda v: lm.packed_segment_cross_entropy(PLOGITS, PACKED.targets, v, 1)),
    ("packed_segment_cross_entropy", "targets", [None, np.full((1, 2, 8), 8), np.zeros((1, 2, 8))],
     lambda v: lm.packed_segment_cross_entropy(PLOGITS, v, PACKED.segment_ids, 1)),
    ("check_lengths", "timesteps", [None, 2.5, True, -1, 2**31, 2**64], lambda v: jp.check_lengths(np.array([1]), v)),
    ("check_lengths", "lengths", [None, [1.5], [True], [5], [-1], [2**64]], lambda v: jp.check_lengths(v, 4)),
    # MAGNeT
    ("magnet_generate", "timesteps", SIZE, lambda v: magnet(timesteps=v)),
    ("magnet_generate", "mask_token", TOKEN + [3], lambda v: magnet(mask_token=v)),
    ("magnet_generate", "span_len", SIZE, lambda v: magnet(span_len=v)),
    ("magnet_generate", "decoding_steps", [None, 3, [2], [2, 0], [2, 1.5], "22"], lambda v: magnet(decoding_steps=v)),
    ("magnet_generate", "span_arrangement", [None, "overlap", 1], lambda v: magnet(span_arrangement=v)),
    ("magnet_generate", "span_scoring", [None, "min"], lambda v: magnet(span_scoring=v)),
    ("magnet_generate", "prompt_lengths", LENGTHS[1:], lambda v: magnet(prompt_lengths=v)),
    ("magnet_generate", "prompt", [None, np.zeros((1, 2)), np.zeros((1, 2, 1)), np.full((1, 2, 1), 8)],
     lambda v: magnet(prompt=v)),
    ("magnet_generate", "temp", [None, True, -1.0, [1.0, 2.0]], lambda v: magnet(temp=v)),
    ("magnet_generate", "top_k", [None, 2.5, -1], lambda v: magnet(top_k=v)),
    ("magnet_generate", "top_p", [None, 1.5], lambda v: magnet(top_p=v)),
    ("magnet_generate", "max_cfg_coef", [True, float("nan"), [1.0, 2.0]], lambda v: magnet(max_cfg_coef=v)),
    ("magnet_generate", "min_cfg_coef", [None, True, float("inf")], lambda v: magnet(min_cfg_coef=v)),
    ("magnet_generate", "use_sampling", FLAG, lambda v: magnet(use_sampling=v)),
    ("magnet_generate", "anneal_temp", FLAG, lambda v: magnet(anneal_temp=v)),
    ("magnet_generate", "key", [3, np.zeros(3), jax.random.split(jax.random.key(0), 2)], lambda v: magnet(key=v)),
    ("magnet_generate", "model_fn", [None, 3, returns_its_tokens_as_logits], lambda v: magnet(model_fn=v)),
    ("magnet_generate", "mask_token", [9, 2**20], lambda v: magnet(mask_token=v)),  # the model embeds only card
    ("magnet_mask", "key", [None, 3, jax.random.split(jax.random.key(0), 2)], lambda v: lm.magnet_mask(v, 1, 6,
                                                                                                       n_q=2)),
    ("magnet_mask", "batch", SIZE, lambda v: lm.magnet_mask(jax.random.key(0), v, 6, n_q=2)),
    ("magnet_mask", "timesteps", SIZE, lambda v: lm.magnet_mask(jax.random.key(0), 1, v, n_q=2)),
    ("magnet_mask", "n_q", SIZE, lambda v: lm.magnet_mask(jax.random.key(0), 1, 6, n_q=v)),
    ("magnet_mask", "span_len", SIZE, lambda v: lm.magnet_mask(jax.random.key(0), 1, 6, n_q=2, span_len=v)),
    ("magnet_mask", "mask_timesteps", [2.5, True, 0, 3], lambda v: lm.magnet_mask(jax.random.key(0), 1, 6, n_q=2,
                                                                                   mask_timesteps=v)),
    ("magnet_inputs", "mask_token", TOKEN, lambda v: lm.magnet_inputs(CODES, 0, MASK, v)),
    ("magnet_inputs", "stage", [None, 2.5, True, -1, 2], lambda v: lm.magnet_inputs(CODES, v, MASK, 8)),
    ("magnet_inputs", "mask", [None, np.zeros((1, 4)), np.zeros((1, 3), bool)], lambda v: lm.magnet_inputs(CODES, 0,
                                                                                                          v, 8)),
    ("magnet_inputs", "codes", [None, np.zeros((2, 4), np.int32), np.zeros((1, 2, 4)), np.full((1, 2, 4), 8),
                                np.full((1, 2, 4), -1)],
     lambda v: lm.magnet_inputs(v, 0, MASK, 8)),
    ("magnet_cross_entropy", "stage", [None, 2.5, -1, 2], lambda v: lm.magnet_cross_entropy(MLOGITS, CODES, v, MASK)),
    ("magnet_cross_entropy", "lengths", LENGTHS[1:], lambda v: lm.magnet_cross_entropy(MLOGITS, CODES, 0, MASK,
                                                                                        lengths=v)),
    ("magnet_cross_entropy", "padding_side", [None, "up"], lambda v: lm.magnet_cross_entropy(MLOGITS, CODES, 0, MASK,
                                                                                            padding_side=v)),
    ("magnet_cross_entropy", "logits", [None, np.zeros((1, 2, 3, 8)), np.zeros((1, 2, 4)), np.zeros((1, 2, 4, 8),
                                                                                                      np.int32)],
     lambda v: lm.magnet_cross_entropy(v, CODES, 0, MASK)),
    ("magnet_cross_entropy", "codes", [None, np.full((1, 2, 4), 8), np.full((1, 2, 4), -1), np.zeros((1, 2, 4))],
     lambda v: lm.magnet_cross_entropy(MLOGITS, v, 0, MASK)),
    ("magnet_fn_of", "model", [None, 3], lambda v: lm.magnet_fn_of(v)),
    # serving
    ("Engine", "slots", SIZE, lambda v: engine(slots=v)),
    ("Engine", "max_timesteps", SIZE, lambda v: engine(max_timesteps=v)),
    ("Engine", "chunk_steps", SIZE, lambda v: engine(chunk_steps=v)),
    ("Engine", "special_token", TOKEN, lambda v: engine(special_token=v)),
    ("Engine", "eos_token", [4.7, True, -1, 2**40, 8], lambda v: engine(eos_token=v)),
    ("Engine", "fill_after", TOKEN[1:], lambda v: engine(fill_after=v)),
    ("Engine", "use_sampling", FLAG, lambda v: engine(use_sampling=v)),
    ("Engine", "prompt_buckets", [[-1], [2.5], [True], 4, "0"], lambda v: engine(prompt_buckets=v)),
    ("Engine", "history", SIZE[:-1], lambda v: engine(history=v)),
    ("Engine", "cfg_coef", [True, "3", float("nan")], lambda v: engine(cfg_coef=v)),
    ("Engine.submit", "conditions", [{"x": np.zeros((1, 2))}], lambda v: engine().submit(CODES[0][:, :0],
                                                                                        conditions=v)),
    ("Engine", "init_state", [None, state_without_slot_axis, state_with_one_row_too_many],
     lambda v: engine(init_state=v)),
    ("Engine.submit", "prompt", [None, np.zeros((3, 1), np.int32), np.zeros((2, 1)), np.zeros((2, 6), np.int32),
                                 np.full((2, 1), 8), np.full((2, 1), -1)], lambda v: engine().submit(v)),
    ("Engine.submit", "max_timesteps", [2.5, 0, 7], lambda v: engine().submit(CODES[0][:, :0],
                                                                                    max_timesteps=v)),
    ("Engine", "key", [3, np.zeros(3, np.uint32), "k"], lambda v: engine(key=v)),
    ("Engine.submit", "key", [3, jax.random.split(jax.random.key(0), 2)], lambda v: engine().submit(CODES[0][:, :0],
                                                                                                    key=v)),
    ("Engine.submit", "sampling", [3, lm.Sampling(cfg_coef=2.0)], lambda v: engine().submit(CODES[0][:, :0],
                                                                                            sampling=v)),
    ("Engine.submit", "temp", [-1.0, None, [1.0, 2.0]], lambda v: engine().submit(CODES[0][:, :0],
                                                                                   sampling=lm.Sampling(temp=v))),
    # presets
    ("MusicGen", "num_codebooks", SIZE, lambda v: presets.MusicGen(v, 8)),
    ("MusicGen", "pad_token_id", [None, 4.7, True, -1], lambda v: presets.MusicGen(2, v)),
    ("MusicGen", "audio_channels", [None, 1.0, 3], lambda v: presets.MusicGen(2, 8, v)),
    ("MusicGen.labels", "lengths", LENGTHS[1:], lambda v: presets.MusicGen(2, 8).labels(CODES, v)),
    ("MusicGen.decode", "timesteps", [None, 2.5, -1], lambda v: presets.MusicGen(2, 8).decode(SEQ, v)),
    ("MusicGen.sequence", "codes", [None, np.zeros((2, 4)), np.zeros((1, 3, 4), np.int32), np.full((1, 2, 4), 8),
                                    np.zeros((1, 2, 4))], lambda v: presets.MusicGen(2, 8).sequence(v)),
    ("Moshi", "audio_vocab_size", [None, 2.5, -1], lambda v: presets.Moshi(2, v)),
    ("Moshi.labels", "lengths", LENGTHS[1:], lambda v: presets.Moshi(2, 8).labels(CODES, v)),
    ("Moshi.sequence", "timesteps", [2.5, -1, 2], lambda v: presets.Moshi(2, 8).sequence(CODES, v)),
    ("HiggsAudio", "audio_stream_eos_id", [None, 2.5, -1, 8], lambda v: presets.HiggsAudio(2, 8, v)),
    ("HiggsAudio.sequence", "lengths", LENGTHS[1:], lambda v: presets.HiggsAudio(2, 8, 9).sequence(CODES, v)),
    ("HiggsAudio.decode", "lengths", LENGTHS[1:], lambda v: presets.HiggsAudio(2, 8, 9).decode(
        np.zeros((1, 2, 7), np.int32), 4, v)),
    ("Dia", "delay_pattern", [None, [], [0, -1], [0.5], "01"], lambda v: presets.Dia(v, 8, 9, 7)),
    ("Dia", "eos_token_id", [None, 2.5, -1, 8], lambda v: presets.Dia((0, 1), 8, 9, v)),
    ("Dia.sequence", "lengths", LENGTHS[1:], lambda v: presets.Dia((0, 1), 8, 9, 7).sequence(CODES, v)),
    ("Dia.frames", "generation", FLAG, lambda v: presets.Dia((0, 1), 8, 9, 7).frames(CODES, generation=v)),
    ("Dia.decode", "audio_prompt_len", [2.5, -1, True], lambda v: presets.Dia((0, 1), 8, 9, 7).decode(
        np.zeros((1, 2, 6), np.int32), v)),
    ("Dia.decode", "codebooks_last", FLAG, lambda v: presets.Dia((0, 1), 8, 9, 7).decode(
        np.zeros((1, 2, 6), np.int32), codebooks_last=v)),
    ("Dia.decode", "ids", [None, np.zeros((2, 6), np.int32), np.zeros((1, 6, 2), np.int32), np.zeros((1, 2, 6)),
                           np.full((1, 2, 6), 2**32, np.int64)], lambda v: presets.Dia((0, 1), 8, 9, 7).decode(v)),
    ("HiggsAudio.decode", "codebooks_last", FLAG, lambda v: presets.HiggsAudio(2, 8, 9).decode(
        np.zeros((1, 2, 7), np.int32), 4, codebooks_last=v)),
    ("KyutaiSTT", "audio_pad_token_id", [None, 2.5, -1, 8], lambda v: presets.KyutaiSTT(2, 9, 5, 8, v)),
    ("KyutaiSTT.audio_ids", "lengths", LENGTHS[1:], lambda v: presets.KyutaiSTT(2, 9, 5, 8, 23).audio_ids(CODES, v)),
    ("BarkCoarse", "codebook_size", SIZE, lambda v: presets.BarkCoarse(codebook_size=v)),
    ("CSM", "num_codebooks", SIZE, lambda v: presets.CSM(v, 10, 6, 7, codebook_pad_token_id=9)),
    ("CSM", "vocab_size", SIZE, lambda v: presets.CSM(2, v, 6, 7, codebook_pad_token_id=9)),
    ("CSM", "audio_eos_token_id", [None, 2.5, -1, 6], lambda v: presets.CSM(2, 10, 6, v, codebook_pad_token_id=9)),
    ("CSM", "codebook_pad_token_id", [None, 2.5, -1, 10, 0], lambda v: presets.CSM(2, 10, 6, 7,
                                                                                      codebook_pad_token_id=v)),
    ("CSM.frames", "input_ids", [None, np.zeros(3, np.int32), np.zeros((1, 3)), np.array([[1, 6, 6, 7]]),
                                 np.array([[6, 6, 6, 6, 6]])], lambda v: CSM.frames(v, CODES)),
    ("CSM.frames", "codes", [None, np.zeros((1, 3, 4), np.int32), np.zeros((1, 2, 4)), np.full((1, 2, 4), 9),
                             np.zeros((2, 2, 4), np.int32)], lambda v: CSM.frames(np.array([[6, 6, 6, 6]]), v)),
    ("CSM.frames", "lengths", LENGTHS[1:], lambda v: CSM.frames(np.array([[6, 6, 6, 6]]), CODES, v)),
    ("CSM.audio_positions", "input_ids", [None, np.zeros(3, np.int32), np.zeros((1, 3))], CSM.audio_positions),
    ("CSM.embedding_ids", "frames", [None, np.zeros((1, 3), np.int32), np.zeros(())], CSM.embedding_ids),
    ("CSM.labels", "depth", [np.zeros((1, 4)), np.zeros((1, 3), bool)],
     lambda v: CSM.labels(np.array([[6, 6, 6, 6]]), CODES, depth=v)),
    ("CSM.loss", "labels", [np.zeros((1, 4, 3), np.int32), np.zeros((1, 4), np.int32)],
     lambda v: CSM.loss(np.zeros((1, 4, 10)), np.zeros((1, 4, 1, 10)), v)),
    ("CSM.loss", "depth_logits", [np.zeros((1, 4, 2, 10))],
     lambda v: CSM.loss(np.zeros((1, 4, 10)), v, np.zeros((1, 4, 2), np.int32))),
    ("CSM.decode", "frames", [None, np.zeros((1, 5, 2), np.int32), np.zeros((1, 2, 5)), np.zeros((2, 5), np.int32)],
     lambda v: CSM.decode(v)),
    ("CSM.decode", "codebooks_last", FLAG, lambda v: CSM.decode(np.zeros((1, 2, 5), np.int32), codebooks_last=v)),
    ("Qwen3OmniTalker", "num_code_groups", SIZE, lambda v: presets.Qwen3OmniTalker(v, 1032, 8, 1030)),
    ("Qwen3OmniTalker", "code_vocab_size", SIZE, lambda v: presets.Qwen3OmniTalker(3, 1032, v, 1030)),
    ("Qwen3OmniTalker", "codec_eos_token_id", [None, 2.5, -1, 5, 1032], lambda v: presets.Qwen3OmniTalker(3, 1032, 8,
                                                                                                              v)),
    ("Qwen3OmniTalker", "codec_pad_id", [2.5, -1, 5, 1032], lambda v: presets.Qwen3OmniTalker(3, 1032, 8, 1030, v)),
    ("Qwen3OmniTalker.embedding_ids", "frames", [None, np.zeros((1, 2), np.int32), np.array([1032, 0, 0]),
                                                 np.array([0, 8, 0]), np.zeros(3)],
     lambda v: presets.Qwen3OmniTalker(3, 1032, 8, 1030).embedding_ids(v)),
    ("Qwen3OmniTalker.text_positions", "steps", [None, 2.5, -1],
     lambda v: presets.Qwen3OmniTalker(3, 1032, 8, 1030).text_positions(v, np.array([2]))),
    ("Qwen3OmniTalker.text_positions", "text_length", [np.zeros((1, 1), np.int32), np.array([1.0])],
     lambda v: presets.Qwen3OmniTalker(3, 1032, 8, 1030).text_positions(4, v)),
    ("Qwen3OmniTalker.decode", "frames", [None, np.zeros((1, 5, 3), np.int32), np.zeros((1, 3, 5))],
     lambda v: presets.Qwen3OmniTalker(3, 1032, 8, 1030).decode(v)),
    ("Qwen3OmniTalker.decode", "codebooks_last", FLAG,
     lambda v: presets.Qwen3OmniTalker(3, 1032, 8, 1030).decode(np.zeros((1, 3, 5), np.int32), codebooks_last=v)),
    ("ParlerTTS", "num_codebooks", SIZE, lambda v: presets.ParlerTTS(v)),
    ("ParlerTTS", "bos_token_id", [None, 2.5, -1, 1024], lambda v: presets.ParlerTTS(bos_token_id=v)),
    ("ParlerTTS.labels", "lengths", LENGTHS[1:], lambda v: presets.ParlerTTS(2, 9, 8, 8).labels(CODES, v)),
    ("ParlerTTS.input_ids", "lengths", LENGTHS[1:], lambda v: presets.ParlerTTS(2, 9, 8, 8).input_ids(CODES, v)),
    ("ParlerTTS.sequence", "codes", [None, np.zeros((2, 4), np.int32), np.full((1, 2, 4), 8), np.zeros((1, 2, 4))],
     lambda v: presets.ParlerTTS(2, 9, 8, 8).sequence(v)),
    ("ParlerTTS.decode", "ids", [None, np.zeros((1, 2, 1), np.int32), np.zeros((1, 3, 4), np.int32)],
     lambda v: presets.ParlerTTS(2, 9, 8, 8).decode(v)),
    ("Orpheus", "offset", [None, 2.5, -1, 2**31], lambda v: presets.Orpheus(offset=v)),
    ("Orpheus", "codebook_size", SIZE, lambda v: presets.Orpheus(codebook_size=v)),
    ("Orpheus.tokens", "levels", [None, np.zeros((1, 1), np.int32), [np.zeros((1, 1), np.int32)] * 2,
                                 [np.zeros((1, 1)), np.zeros((1, 2)), np.zeros((1, 4))],
                                 [np.zeros((1, 1), np.int32), np.zeros((1, 3), np.int32), np.zeros((1, 4), np.int32)],
                                 [np.zeros(1, np.int32), np.zeros(2, np.int32), np.zeros(4, np.int32)],
                                 [np.full((1, 1), 4096), np.zeros((1, 2), np.int32), np.zeros((1, 4), np.int32)]],
     lambda v: presets.Orpheus().tokens(v)),
    ("Orpheus.virtual", "levels", [None, [np.zeros((1, 1), np.int32)] * 2], lambda v: presets.Orpheus().virtual(v)),
    ("Orpheus.codes", "ids", [None, np.zeros(7, np.int32), np.zeros((1, 6), np.int32), np.zeros((1, 7)),
                              np.full((1, 7), 128266 + 2**32, np.int64), np.full((1, 7), 128266, np.int32)],
     lambda v: presets.Orpheus().codes(v)),
    ("Orpheus.split", "ids", [None, np.zeros(7, np.int32)], lambda v: presets.Orpheus().split(v)),
    ("from_transformers", "model_type", [None, {}, {"model_type": 3}], lambda v: presets.from_transformers(v)),
    ("from_transformers", "num_codebooks", [{"model_type": "moshi", "audio_vocab_size": 8}],
     lambda v: presets.from_transformers(v)),
    ("from_transformers", "talker_config", [{"model_type": "qwen3_omni_moe"}], lambda v: presets.from_transformers(v)),
    ("from_transformers", "codebook_pad_token_id", [{"model_type": "csm", "num_codebooks": 2, "vocab_size": 10,
                                                     "audio_token_id": 6, "audio_eos_token_id": 7,
                                                     "codebook_eos_token_id": 0}],
     lambda v: presets.from_transformers(v)),
]  # fmt: skip


def _shown(value) -> str:
    """A test id's value: a function by its name (its repr holds an address that differs between xdist workers)."""
    return getattr(value, "__name__", None) or f"{value!r:.30}"


CASES = [
    pytest.param(call, argument, value, id=f"{entry}-{argument}-{_shown(value)}")
    for entry, argument, values, call in ROWS
    for value in values
]


@pytest.mark.parametrize(("call", "argument", "value"), CASES)
def test_a_bad_value_raises_naming_its_argument(call, argument, value):
    with pytest.raises((ValueError, TypeError)) as info:
        call(value)
    message = str(info.value)
    name = argument.split("[")[0]
    assert f"`{name}" in message or f"{name}=" in message, f"{argument}={value!r}: {message}"


def test_every_row_has_bad_values_or_is_a_known_placeholder():
    empty = [entry for entry, _, values, _ in ROWS if not values]
    assert empty == ["sample_next_token"]  # a traced helper: its values are checked by generate's settings
