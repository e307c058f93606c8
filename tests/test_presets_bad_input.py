"""Presets refuse bad input naming the argument (issue 25's fuzz): the cases that were silent or wrong before."""

from __future__ import annotations

import numpy as np
import pytest

from jax_patterns import presets

CODES = np.array([[[1, 2, 3, 4], [5, 6, 7, 0]]], np.int32)
IDS = dict(audio_bos_token_id=8, audio_pad_token_id=23)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda k: presets.MusicGen(k, 8), "num_codebooks"),
        (lambda k: presets.Moshi(k, 8), "num_codebooks"),
        (lambda k: presets.HiggsAudio(k, 8, 9), "num_codebooks"),
        (lambda k: presets.KyutaiSTT(k, 9, 5, 8, 23), "num_codebooks"),
        (lambda k: presets.ParlerTTS(k, 9, 8, 8), "num_codebooks"),
        (
            lambda k: presets.CSM(k, 10, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=9),
            "num_codebooks",
        ),
        (lambda k: presets.Qwen3OmniTalker(k, 1032, 8, 1030), "num_code_groups"),
        (lambda k: presets.BarkCoarse(k, 8, 10), "n_coarse_codebooks"),
        (lambda k: presets.Dia([0] * k, bos_token_id=8, pad_token_id=9, eos_token_id=7), "delay_pattern"),
        (lambda k: presets.from_transformers({"model_type": "musicgen", "num_codebooks": k, "pad_token_id": 8}), ""),
    ],
)
def test_codebook_counts_are_bounded_as_the_providers_bound_them(make, name):
    make(46340 if name != "delay_pattern" else 2)  # the largest count a pattern can hold (a short Dia for speed)
    with pytest.raises(ValueError, match=f"`{name or 'num_codebooks'}`"):
        make(46341)  # was accepted: its patterns cannot exist (46341**2 int32 indexes); 2**31 - 1 hung


def test_vocabulary_sizes_must_be_positive_and_offsets_fit_int32():
    with pytest.raises(ValueError, match="`audio_vocab_size` must be >= 1"):
        presets.Moshi(2, 0)
    for field in ("codebook_vocab_size", "vocab_size"):
        with pytest.raises(ValueError, match=f"`{field}` must be >= 1"):
            presets.KyutaiSTT(**{**dict(num_codebooks=2, codebook_vocab_size=9, vocab_size=5), field: 0}, **IDS)
    # an embedding row (`vocab_size + k * codebook_vocab_size + code`) past int32 would wrap in the int32 ids
    with pytest.raises(ValueError, match=r"`vocab_size` \+ `num_codebooks` \* `codebook_vocab_size`"):
        presets.KyutaiSTT(4, 2**29, 5, 8, 23)
    with pytest.raises(ValueError, match=r"`num_codebooks` \* `vocab_size`"):
        presets.CSM(4, 2**30, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=9)
    with pytest.raises(ValueError, match=r"`semantic_vocab_size` \+ `n_coarse_codebooks` \* `codebook_size`"):
        presets.BarkCoarse(2, 2**30, 10)
    with pytest.raises(ValueError, match=r"`vocab_size` \+ \(`num_code_groups` - 1\) \* `code_vocab_size`"):
        presets.Qwen3OmniTalker(3, 2**30, 2**30 - 2, 2**30 - 1)


@pytest.mark.parametrize("channels", [False, 0, 3])
def test_from_transformers_checks_audio_channels_instead_of_reading_falsy_as_mono(channels):
    config = {"model_type": "musicgen", "num_codebooks": 2, "pad_token_id": 8, "audio_channels": channels}
    with pytest.raises((TypeError, ValueError), match="`audio_channels`"):
        presets.from_transformers(config)  # False and 0 were read as 1 (mono)
    assert presets.from_transformers({**config, "audio_channels": None}).audio_channels == 1  # unset: mono


def test_dia_takes_any_number_of_channels():
    preset = presets.Dia([0, 1, 1], bos_token_id=8, pad_token_id=9, eos_token_id=7)
    assert preset.provider.n_q == 3
    with pytest.raises(ValueError, match="`delay_pattern` has 0 channels"):
        presets.Dia([], bos_token_id=8, pad_token_id=9, eos_token_id=7)


def test_decode_of_no_frames_gives_zero_lengths():
    # both crashed in `argmax` of an empty axis
    codes, lengths = presets.CSM(2, 10, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=9).decode(
        np.zeros((1, 2, 0), np.int32)
    )
    assert codes.shape == (1, 2, 0) and np.asarray(lengths).tolist() == [0]
    codes, lengths = presets.Qwen3OmniTalker(3, 1032, 8, 1030).decode(np.zeros((2, 3, 0), np.int32))
    assert codes.shape == (2, 3, 0) and np.asarray(lengths).tolist() == [0, 0]


def test_decode_refuses_ids_outside_the_vocabulary():
    csm = presets.CSM(2, 10, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=9)
    with pytest.raises(ValueError, match=r"`frames` holds the code 10; codes must lie in \[0, 10\)"):
        csm.decode(np.array([[[10, 2], [4, 0]]], np.int32))  # was returned as a code


def test_decode_names_ids_and_timesteps():
    sequence = np.asarray(presets.MusicGen(2, 8).sequence(CODES))
    with pytest.raises(ValueError, match=r"`ids` has S=6 steps; the layout of `timesteps`=0 frames has at most 2"):
        presets.MusicGen(2, 8).decode(sequence, 0)
    with pytest.raises(TypeError, match="`ids` is None"):
        presets.Moshi(2, 8).decode(None, 4)
    higgs = presets.HiggsAudio(2, 8, 9)
    ids = np.asarray(higgs.sequence(CODES))
    with pytest.raises(ValueError, match=r"`lengths` must lie in \[0, `timesteps`=4\]"):
        higgs.decode(ids, 4, lengths=np.array([5]))
    with pytest.raises(ValueError, match=r"`ids` has S=0 steps; .* exactly 7 \(with `lengths`\)"):
        higgs.decode(ids[..., :0], 4, lengths=np.array([4]))


@pytest.mark.parametrize(
    ("loss", "name", "steps"),
    [
        (lambda logits, codes: presets.MusicGen(2, 8).loss(logits, codes), "logits", 5),
        (lambda logits, codes: presets.Moshi(2, 8).loss(logits, codes), "audio_logits", 4),
        (lambda logits, codes: presets.HiggsAudio(2, 8, 9).loss(logits, codes), "audio_logits", 7),
    ],
)
def test_losses_check_their_logits_naming_them(loss, name, steps):
    logits = np.zeros((1, 2, steps, 8), np.float32)
    loss(logits, CODES)
    with pytest.raises(ValueError, match=f"`{name}` has no class"):
        loss(logits[..., :0], CODES)  # was a gather error
    with pytest.raises(TypeError, match=f"`{name}` must be floating point"):
        loss(logits.astype(np.int32), CODES)
    with pytest.raises(ValueError, match=f"`{name}` has K=2, S={steps}; the layout of `codes`"):
        loss(logits, CODES[..., :0])  # codes of another length: both named


def test_csm_loss_checks_logits_and_labels():
    csm = presets.CSM(2, 10, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=9)
    ids = np.array([[1, 6, 6, 6, 6, 7]], np.int32)
    labels = np.asarray(csm.labels(ids, CODES))
    backbone = np.zeros((1, 6, 10), np.float32)
    depth = np.zeros((1, 6, 1, 10), np.float32)
    csm.loss(backbone, depth, labels)
    with pytest.raises(TypeError, match="`backbone_logits` must be floating point"):
        csm.loss(backbone.astype(np.int32), depth, labels)  # was accepted
    with pytest.raises(TypeError, match="`depth_logits` must be floating point"):
        csm.loss(backbone, depth.astype(np.int32), labels)
    for bad in (-1, 10, 2**32 + 1):  # 2**32 + 1 would wrap to 1 in int32
        wrong = labels.astype(np.int64)
        wrong[0, 1, 0] = bad
        with pytest.raises(ValueError, match=f"`labels` holds {bad}; labels must be -100 or lie in"):
            csm.loss(backbone, depth, wrong)
    with pytest.raises(TypeError, match="`labels` is None"):
        csm.loss(backbone, depth, None)
    with pytest.raises(ValueError, match="`depth` must be bool"):
        csm.labels(ids, CODES, depth="2")


def test_kyutai_ids_are_checked():
    preset = presets.KyutaiSTT(2, 9, 5, 8, 23)
    good = np.array([[[1, 8, 8], [2, 3, 23]]], np.int32)
    assert np.asarray(preset.embedding_ids(good)).tolist() == [[[1, 13, 22], [2, 8, 23]]]
    for bad, match in [
        (good.astype(np.float32), "`input_ids` must hold integer codes"),  # was offset as floats
        (np.where(good == 3, -1, good), "`input_ids` holds the code -1"),
        (np.where(good == 3, 9, good), r"`input_ids`\[0, 1, 1\] = 9 is outside a codebook's"),
        (np.where(good == 2, 5, good), r"`input_ids`\[0, 1, 0\] = 5 is outside the text's"),
        (good[..., :2], r"`input_ids` must be \[..., 1 \+ K=3\]"),
        (None, "`input_ids` is None"),
    ]:
        with pytest.raises((TypeError, ValueError), match=match):
            preset.embedding_ids(bad)
    text = np.array([[1, 2, 3]], np.int32)
    preset.input_ids(text, CODES)
    with pytest.raises(TypeError, match="`text` must hold integer codes"):
        preset.input_ids(text.astype(np.float32), CODES)  # was accepted
    with pytest.raises(ValueError, match=r"`text` holds the code 5; codes must lie in \[0, 5\)"):
        preset.input_ids(text + 2, CODES)
    with pytest.raises(ValueError, match="`text` must have rank 2"):
        preset.input_ids(text[0], CODES)


def test_qwen_text_positions_checks_text_length():
    talker = presets.Qwen3OmniTalker(3, 1032, 8, 1030)
    assert np.asarray(talker.text_positions(4, np.array([2], np.uint64))).tolist() == [[0, 1, -1, -1]]
    for bad in (np.array([-1]), np.array([2**31], np.int64), np.array([2.0]), None, "2"):
        with pytest.raises((TypeError, ValueError), match="`text_length`"):
            talker.text_positions(4, bad)  # -1 and 2**31 (wrapped) were accepted


def test_qwen_embedding_ids_reads_talker_ids_in_group_0():
    talker = presets.Qwen3OmniTalker(3, 1032, 8, 1030)
    assert np.asarray(talker.embedding_ids(np.array([1030, 0, 7]))).tolist() == [1030, 1032, 1047]
    with pytest.raises(ValueError, match="`frames` holds the code 8"):
        talker.embedding_ids(np.array([1030, 8, 0]))


def test_bark_codes_and_history_check_their_arguments():
    bark = presets.BarkCoarse(2, 8, 10)
    stream = np.array([[11, 23, 12, 24]], np.int32)
    assert np.asarray(bark.codes(stream)).tolist() == [[[1, 2], [5, 6]]]
    assert np.asarray(bark.codes(stream[0])).tolist() == [[1, 2], [5, 6]]  # any batch axes
    with pytest.raises(ValueError, match="`stream` holds the code -1"):
        bark.codes(np.where(stream == 23, -1, stream))  # -1, the inner special token, came back as a code
    with pytest.raises(ValueError, match="`stream` has 3 tokens, not a whole number of frames"):
        bark.codes(stream[:, :3])
    with pytest.raises(ValueError, match="`stream` must have rank at least 1"):
        bark.codes(0)
    prompt = CODES[0]
    assert np.asarray(bark.history(prompt, 4, 6, 1.5)).tolist() == [12, 24, 13, 25]  # stream[-6:][:-2]
    with pytest.raises(ValueError, match=r"`coarse_prompt` must be codes \[K=2, T\]"):
        bark.history(CODES, 4, 6, 1.5)
    with pytest.raises(TypeError, match="`semantic_length` must be an int"):
        bark.history(prompt, 2.5, 6, 1.5)  # was truncated
    with pytest.raises(ValueError, match="`max_coarse_history` must be >= 0"):
        bark.history(prompt, 4, -1, 1.5)
    for ratio in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="`semantic_to_coarse_ratio` must be finite and positive"):
            bark.history(prompt, 4, 6, ratio)  # 0 divided by zero
    # a tiny ratio: the quotients are infinite (int() of them raised OverflowError); it keeps round(4 * 1e-300) = 0
    # tokens, which `[-0:]` reads as all of them, as transformers' slicing does
    assert np.asarray(bark.history(prompt, 4, 6, 1e-300)).tolist() == [11, 23, 12, 24, 13, 25]


def test_orpheus_split_takes_lists_and_checks_ids():
    orpheus = presets.Orpheus(offset=100, codebook_size=8)
    whole, rest = orpheus.split([[101, 110, 120, 129, 135, 141, 149, 100]])  # a list failed to slice
    assert np.asarray(whole).shape == (1, 7) and np.asarray(rest).tolist() == [[100]]
    with pytest.raises(TypeError, match="`ids` must hold integer codes"):
        orpheus.split(np.zeros((1, 5), np.float32))
    with pytest.raises(ValueError, match="`ids` holds the code -1"):
        orpheus.split(np.full((1, 5), -1))
    with pytest.raises(TypeError, match="`levels` must be SNAC's three levels"):
        orpheus.tokens(None)
