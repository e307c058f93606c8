"""`presets.ParlerTTS` against `parler_tts` 0.2.3's delay-mask build, training labels and revert.

Goldens from the sdist's own functions: tools/make_parler_goldens.py.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from helpers import assert_same

from jax_patterns import presets

GOLDENS = pathlib.Path(__file__).parent / "goldens" / "parler_tts_0_2_3.npz"


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDENS) as data:
        return {name: data[name] for name in data}


def cases(golden):
    """`(case, its arrays)` for every case of the goldens."""
    numbers = sorted({int(name.split("_")[0]) for name in golden if name[0].isdigit()})
    for case in numbers:
        yield case, {name.split("_", 1)[1]: golden[name] for name in golden if name.startswith(f"{case}_")}


def short(g) -> bool:
    """parler_tts (as MusicGen) leaves ids of fewer than 2K - 1 steps undelayed."""
    _, k, frames = g["codes"].shape
    return frames + k < 2 * k - 1


def test_sequence_equals_build_delay_pattern_mask(golden):
    for case, g in cases(golden):
        batch, k, frames = g["codes"].shape
        mine = np.asarray(presets.ParlerTTS(k).sequence(g["codes"])).reshape(batch * k, -1)
        if short(g):  # the quirk: the mask is all -1 and the ids come back as they went in
            assert (g["mask"] == -1).all(), case
            assert_same(g["inputs"][:, 1:], g["codes"].reshape(batch * k, -1))
            continue
        assert_same(mine, g["mask"], f"case {case}")
        assert_same(g["inputs"], mine[:, : frames + 1])  # every step is known: the ids are the whole mask


def test_training_labels_and_decoder_inputs_equal_the_training_script(golden):
    """`postprocess_dataset` per example and the collator's -100 padding; `shift_tokens_right` for the inputs.

    The training script builds each example's labels with `max_length = T + 1 + K`: below 2K - 1 (clips of fewer
    than K - 2 frames) `build_delay_pattern_mask` returns its mask all -1, which the script turns into labels that
    are all eos. The preset delays those too; the comparison covers the others and shows the quirk.
    """
    for case, g in cases(golden):
        k = g["codes"].shape[1]
        preset = presets.ParlerTTS(k)
        labels = np.asarray(preset.labels(g["codes"], g["lengths"]))
        inputs = np.asarray(preset.input_ids(g["codes"], g["lengths"]))
        for b, n in enumerate(int(n) for n in g["lengths"]):
            if n + 1 + k < 2 * k - 1:
                assert (g["labels"][b, : n + k] == 1024).all() and (g["labels"][b, n + k :] == -100).all()
                continue
            assert_same(labels[b], g["labels"][b], f"case {case} example {b}")
            assert_same(inputs[b], g["decoder_input_ids"][b], f"case {case} example {b}")


def test_decode_equals_the_revert_of_generate(golden):
    for case, g in cases(golden):
        batch, k, frames = g["codes"].shape
        if short(g):  # the same quirk: the revert keeps every step
            assert g["reverted"].shape == (batch, k, frames + k)
            continue
        codes, lengths = presets.ParlerTTS(k).decode(g["generated"].reshape(batch, k, -1))
        assert_same(codes, g["reverted"], f"case {case}")
        assert_same(lengths, g["ends"], f"case {case}")  # each example's eos frame
        kept = np.arange(frames) < g["ends"][:, None, None]
        assert_same(np.where(kept, np.asarray(codes), -1), np.where(kept, g["codes"], -1))
        # parler_tts decodes the frames holding no id >= its codec's codebook size (1024): the frames before eos
        assert_same((g["reverted"] < 1024).all(axis=1).sum(-1), lengths)


def test_round_trip_and_ids():
    preset = presets.ParlerTTS(3, bos_token_id=9, eos_token_id=8, pad_token_id=8)
    rng = np.random.default_rng(0)
    codes, lengths = rng.integers(0, 8, (3, 3, 5)), np.array([5, 2, 0])
    back, decoded = preset.decode(preset.sequence(codes, lengths))
    assert_same(decoded, lengths)
    kept = np.arange(5) < lengths[:, None, None]
    assert_same(np.where(kept, np.asarray(back), -1), np.where(kept, codes, -1))
    with pytest.raises(ValueError, match=r"`bos_token_id`=8 must differ from `eos_token_id`=8"):
        presets.ParlerTTS(3, bos_token_id=8, eos_token_id=8, pad_token_id=8)
    with pytest.raises(ValueError, match=r"`codes` holds the code 8; codes must lie in \[0, 8\)"):
        preset.sequence(np.full((1, 3, 2), 8))


def test_from_transformers_reads_a_parler_tts_config():
    """`parler_tts`'s config (not in transformers) read as a mapping: the composite's decoder, or the decoder's."""
    decoder = {"model_type": "parler_tts_decoder", "num_codebooks": 9, "vocab_size": 1088, "bos_token_id": 1025,
               "eos_token_id": 1024, "pad_token_id": 1024}  # fmt: skip
    assert presets.from_transformers({"model_type": "parler_tts", "decoder": decoder}) == presets.ParlerTTS()
    assert presets.from_transformers(decoder) == presets.ParlerTTS()
    with pytest.raises(ValueError, match=r"the parler_tts_decoder config has no `bos_token_id`"):
        presets.from_transformers({k: v for k, v in decoder.items() if k != "bos_token_id"})
