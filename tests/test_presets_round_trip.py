"""Every preset's ids come back as its codes: what a preset writes, its own undo reads (issue 25, item 15).

Each preset's own arrays are `[B, K, S]`; the methods named after a transformers output (`Dia.inputs`,
`HiggsAudio.inputs`, `KyutaiSTT.input_ids`) give transformers' layout, `[B, S, K]`, and the undo reads that
layout with `codebooks_last=True` (as it also reads what transformers' `generate` returns). Orpheus's and
Parler-TTS's round trips are with their peers' tests (`test_presets_orpheus.py`, `test_presets_parler_tts.py`).
"""

from __future__ import annotations

import re
import typing as tp

import numpy as np
import pytest
from helpers import assert_same
from hypothesis import given, settings
from hypothesis import strategies as st

from jax_patterns import presets

FEW = settings(max_examples=8)
FEWER = settings(max_examples=5)  # each example compiles the preset's eager ops for its shapes anew


@st.composite
def batches(draw, k: int | None = None, min_length: int = 1):
    """`(codes [B, K, T], lengths [B])`: codes below 8, the longest example as long as the batch."""
    k = draw(st.integers(1, 4)) if k is None else k
    lengths = draw(st.lists(st.integers(min_length, 4), min_size=1, max_size=3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    lengths[draw(st.integers(0, len(lengths) - 1))] = max(lengths)
    return rng.integers(0, 8, (len(lengths), k, max(lengths))), np.asarray(lengths)


def same_where_kept(actual, codes, lengths) -> None:
    kept = np.arange(codes.shape[-1]) < lengths[:, None, None]
    assert_same(np.where(kept, np.asarray(actual)[..., : codes.shape[-1]], -1), np.where(kept, codes, -1))


@FEW
@given(batches(), st.integers(1, 2))
def test_musicgen_sequence_round_trips(batch, channels):
    codes, _ = batch
    codes = np.concatenate([codes] * channels, axis=1)  # stereo needs an even K
    preset = presets.MusicGen(codes.shape[1], 8, channels)
    assert_same(preset.decode(preset.sequence(codes), codes.shape[-1]), codes)


@FEW
@given(batches(min_length=0))
def test_moshi_sequence_round_trips(batch):
    codes, lengths = batch
    preset = presets.Moshi(codes.shape[1], 8)
    same_where_kept(preset.decode(preset.sequence(codes, lengths=lengths), codes.shape[-1], lengths), codes, lengths)


@FEWER
@given(batches(min_length=0))
def test_higgs_audio_inputs_and_sequence_round_trip(batch):
    codes, lengths = batch
    preset = presets.HiggsAudio(codes.shape[1], 8, 9)
    timesteps = codes.shape[-1]
    same_where_kept(preset.decode(preset.sequence(codes, lengths), timesteps, lengths), codes, lengths)
    ids, _, _ = preset.inputs(codes, lengths)  # the processor's [B, S, K]
    same_where_kept(preset.decode(ids, timesteps, lengths, codebooks_last=True), codes, lengths)


@st.composite
def dia_batches(draw):
    """`(delays, codes, lengths)`: channel 0 undelayed, as `batch_decode` (which reads channel 0) assumes."""
    delays = (0, *draw(st.lists(st.integers(0, 3), max_size=3)))
    return (delays, *draw(batches(k=len(delays))))


@FEWER
@given(dia_batches())
def test_dia_training_inputs_and_sequence_round_trip(batch):
    delays, codes, lengths = batch
    preset = presets.Dia(delays, bos_token_id=9, pad_token_id=10, eos_token_id=8)
    decoded, decoded_lengths = preset.decode(preset.sequence(codes, lengths))
    assert_same(decoded_lengths, lengths)
    same_where_kept(decoded, codes, lengths)
    ids = preset.inputs(codes, lengths)["decoder_input_ids"]  # transformers' [B, S - 1, C]
    decoded, decoded_lengths = preset.decode(ids, codebooks_last=True)
    # `batch_decode` ends the window at channel 0's eos; the training cut (the last step) keeps it unless every
    # delay is 0, where the cut drops the eos frame and the window ends a frame early, as on generation inputs
    expected = lengths if max(delays) else lengths - 1
    assert_same(decoded_lengths, expected)
    same_where_kept(decoded, codes, expected)


@pytest.mark.parametrize("codebooks_last", [False, True])
def test_dia_decode_names_the_other_layout(codebooks_last):
    preset = presets.Dia((0, 8, 9), bos_token_id=1026, pad_token_id=1025, eos_token_id=1024)
    ids = np.asarray(preset.sequence(np.zeros((2, 3, 4), np.int32)))  # [B, C, S]
    if not codebooks_last:
        ids = np.swapaxes(ids, 1, 2)
    with pytest.raises(
        ValueError, match=re.escape(f"`ids` has shape {ids.shape}") + f".*`codebooks_last={not codebooks_last}`"
    ):
        preset.decode(ids, codebooks_last=codebooks_last)


@FEW
@given(batches())
def test_bark_coarse_stream_round_trips(batch):
    codes, _ = batch
    preset = presets.BarkCoarse(codes.shape[1], codebook_size=8, semantic_vocab_size=100)
    assert_same(preset.codes(preset.stream(codes)), codes)


@FEW
@given(batches(min_length=0))
def test_kyutai_stt_inputs_read_back_through_the_pattern(batch):
    """Kyutai STT has no audio undo (its model writes text): its audio inputs are the pattern's sequence."""
    codes, lengths = batch
    k, timesteps = codes.shape[1], codes.shape[-1]
    preset = presets.KyutaiSTT(k, codebook_vocab_size=9, vocab_size=5, audio_bos_token_id=8, audio_pad_token_id=99)
    audio = preset.audio_ids(codes, lengths)
    pattern = preset.provider.get_pattern(timesteps)
    same_where_kept(pattern.revert_pattern_sequence(audio, 8)[0], codes, lengths)
    ids = preset.input_ids(np.zeros((len(lengths), timesteps + 1), np.int64), codes, lengths)  # [B, S, 1 + K]
    assert_same(np.swapaxes(np.asarray(ids)[..., 1:], 1, 2), audio)


def test_dia_decode_reads_what_transformers_generate_returns():
    """`DiaForConditionalGeneration.generate` (tiny random model, audio prompts) returns `[B, S, C]`: `decode` with
    `codebooks_last=True` gives `batch_decode`'s frames (equal audio through the same DAC)."""
    import torch
    from transformers import (
        DacConfig,
        DacModel,
        DiaConfig,
        DiaFeatureExtractor,
        DiaForConditionalGeneration,
        DiaProcessor,
        DiaTokenizer,
    )

    torch.manual_seed(0)
    delays = [0, 2, 1]
    dac_config = DacConfig(encoder_hidden_size=8, downsampling_ratios=[2, 2], decoder_hidden_size=16,
                           n_codebooks=3, codebook_size=1024, codebook_dim=4)  # fmt: skip
    dac = DacModel(dac_config).eval()
    processor: tp.Any = DiaProcessor(DiaFeatureExtractor(hop_length=4, sampling_rate=44100), DiaTokenizer(), dac)
    small = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "num_key_value_heads": 1, "head_dim": 8}  # fmt: skip
    decoder = small | {"num_channels": 3, "cross_num_attention_heads": 2, "cross_head_dim": 8,
                       "cross_num_key_value_heads": 1, "cross_hidden_size": 16}  # fmt: skip
    config = DiaConfig(encoder_config=small | {"vocab_size": 256}, decoder_config=decoder, delay_pattern=delays)
    model = DiaForConditionalGeneration(config).eval()
    preset = presets.from_transformers(config)
    assert isinstance(preset, presets.Dia)
    rng = np.random.default_rng(3)
    audio = [rng.standard_normal(4 * n).astype(np.float32) for n in (3, 1)]
    batch = processor(text=["hi", "ho"], audio=audio, generation=True, delay_pattern=delays, padding="longest")
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=6, do_sample=False)
    assert tuple(out.shape)[::2] == (2, 3)  # [B, S, C]
    theirs = processor.batch_decode(out, delay_pattern=delays)
    codes, lengths = preset.decode(out.numpy(), codebooks_last=True)
    mine, mine_lengths = preset.decode(np.swapaxes(out.numpy(), 1, 2))
    assert_same(mine, codes)
    assert_same(mine_lengths, lengths)
    assert int(np.min(lengths)) > 0
    for b in range(2):
        own = np.asarray(codes[b, :, : int(lengths[b])])
        with torch.no_grad():
            decoded = dac.decode(audio_codes=torch.from_numpy(own[None].astype(np.int64))).audio_values.squeeze()
        assert_same(decoded.numpy(), theirs[b].numpy(), f"b={b}")


@FEW
@given(batches(min_length=0))
def test_csm_placeholders_and_generated_frames_round_trip(batch):
    """The frames `CSM.frames` puts at each example's placeholders are its codes, in order; generated frames with an
    eos frame after each example's codes come back from `decode` with their lengths. (Codes avoid an all-zero frame:
    with `codebook_eos_token_id=0` such a frame is CSM's eos, an ambiguity of its convention.)"""
    codes, lengths = batch
    codes = codes % 7 + 1
    k, timesteps = codes.shape[1], codes.shape[-1]
    preset = presets.CSM(k, 10, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=9)
    steps = 2 + timesteps
    input_ids = np.zeros((len(lengths), steps), np.int64)  # left-padded text: bos, placeholders, audio eos
    for b, n in enumerate(lengths):
        input_ids[b, steps - n - 2 :] = [1, *[6] * int(n), 7]
    frames = np.asarray(preset.frames(input_ids, codes, lengths))
    for b, n in enumerate(lengths):
        assert_same(frames[b][input_ids[b] == 6].T, codes[b, :, :n])
    generated = np.where(np.arange(timesteps + 1) == lengths[:, None, None], 0, np.pad(codes, ((0, 0), (0, 0), (0, 1))))
    decoded, decoded_lengths = preset.decode(generated)
    assert_same(decoded_lengths, lengths)
    same_where_kept(decoded, codes, lengths)


@FEW
@given(batches(min_length=0))
def test_qwen3_omni_talker_generated_frames_round_trip(batch):
    codes, lengths = batch
    preset = presets.Qwen3OmniTalker(codes.shape[1], 1032, 8, codec_eos_token_id=1030)
    eos = np.arange(codes.shape[-1] + 1) == lengths[:, None]
    generated = np.pad(codes, ((0, 0), (0, 0), (0, 1)))
    generated[:, 0] = np.where(eos, 1030, generated[:, 0])
    decoded, decoded_lengths = preset.decode(np.swapaxes(generated, 1, 2), codebooks_last=True)
    assert_same(decoded_lengths, lengths)
    kept = np.arange(codes.shape[-1] + 1) < lengths[:, None, None]
    assert_same(decoded, np.where(kept, generated, 0))
