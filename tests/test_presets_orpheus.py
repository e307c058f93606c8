"""`presets.Orpheus` against Orpheus's released decoder (goldens) and SNAC's own codes (live, a tiny SNAC)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from helpers import assert_same
from hypothesis import given, settings
from hypothesis import strategies as st

from jax_patterns import presets

GOLDENS = pathlib.Path(__file__).parent / "goldens" / "orpheus_0_1_0.npz"  # tools/make_orpheus_goldens.py
ORPHEUS = presets.Orpheus()


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDENS) as data:
        return {name: data[name] for name in data}


def levels_of(golden, prefix: str, index=()) -> tuple[np.ndarray, ...]:
    return tuple(golden[f"{prefix}_{level}"][index] for level in range(3))


def test_codes_and_tokens_equal_orpheus_decoder(golden):
    """Whole streams: `codes` gives the levels `convert_to_audio` hands SNAC; `tokens` gives the stream back."""
    levels = levels_of(golden, "levels")
    for mine, theirs in zip(ORPHEUS.codes(golden["ids"]), levels):
        assert_same(mine, theirs)
    assert_same(ORPHEUS.tokens(levels), golden["ids"])


def test_streaming_in_whole_frames_equals_the_decoders_windows(golden):
    """`tokens_decoder` hands SNAC the last four frames each time a frame completes (from the fourth on): the same
    frames as `codes` of each window, and as streaming the ids in chunks through `split`."""
    ids = golden["ids"]
    n_windows = golden["windows_0"].shape[1]
    for w in range(n_windows):
        mine = ORPHEUS.codes(ids[:, 7 * w : 7 * (w + 4)])
        for level, theirs in enumerate(levels_of(golden, "windows", (slice(None), w))):
            assert_same(mine[level], theirs, f"window {w} level {level}")
    rest = ids[:, :0]
    frames: list[tuple] = []
    for chunk in np.split(ids, [3, 4, 12, 30, 31], axis=1):  # chunks that cut frames anywhere
        whole, rest = ORPHEUS.split(np.concatenate([rest, chunk], axis=1))
        frames.append(ORPHEUS.codes(whole))
    assert rest.shape == (2, 0)
    for level, theirs in enumerate(levels_of(golden, "levels")):
        assert_same(np.concatenate([np.asarray(f[level]) for f in frames], axis=1), theirs)


def test_code_zero_is_kept_where_orpheus_drops_it(golden):
    """Orpheus's decoder skips a code 0 (`if token > 0`): every later token lands in the wrong position and no
    window reaches SNAC. The preset keeps it."""
    assert int(golden["zero_windows"]) == 0
    l0, l1, l2 = ORPHEUS.codes(golden["zero_ids"][None])
    assert int(l2[0, 5]) == 0  # position 3 of frame 1: l2[4 * 1 + 1]
    assert_same(ORPHEUS.tokens((l0, l1, l2))[0], golden["zero_ids"])


def test_code_4096_is_refused_where_orpheus_accepts_it(golden):
    """Orpheus's check is `> 4096`: 4096 (one past SNAC's codebook) reaches SNAC. Its id is position 3's code 0."""
    assert bool(golden["high_accepted"]) and int(golden["high_levels_2"][0, 0]) == 4096
    ids = 128266 + np.arange(7) * 4096 + np.array([5, 6, 4096, 7, 8, 9, 10])
    with pytest.raises(ValueError, match=r"`ids`\[0, 2\] = 140554 is outside position 2's range \[136458, 140554\)"):
        ORPHEUS.codes(ids[None])
    with pytest.raises(ValueError, match=r"`levels\[2\]` holds the code 4096; codes must lie in \[0, 4096\)"):
        ORPHEUS.tokens((np.zeros((1, 1), int), np.zeros((1, 2), int), np.array([[4096, 0, 0, 0]])))


def tiny_snac():
    """SNAC 24 kHz's layout (codebooks of 4096, `vq_strides` [4, 2, 1]) with tiny random layers."""
    import warnings

    import torch

    with warnings.catch_warnings():  # snac 1.2.1 decorates a function with `torch.jit.script` at import
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        from snac import SNAC

    torch.manual_seed(0)
    return SNAC(sampling_rate=24000, encoder_dim=2, encoder_rates=[2, 2], decoder_dim=8, decoder_rates=[2, 2],
                attn_window_size=None, codebook_size=4096, codebook_dim=2, vq_strides=[4, 2, 1]).eval()  # fmt: skip


@pytest.mark.parametrize(("batch", "frames"), [(1, 1), (2, 5), (3, 8)])
def test_snac_codes_round_trip_through_the_stream(batch, frames):
    """`SNAC.encode` (snac 1.2.1, live) gives levels `[B, T], [B, 2T], [B, 4T]`: the stream is `7T` ids and
    `codes` gives SNAC's levels back, which it decodes to the same audio."""
    import torch

    model = tiny_snac()
    audio = torch.from_numpy(np.random.default_rng(frames).standard_normal((batch, 1, 16 * frames)).astype(np.float32))
    with torch.no_grad():
        levels = [c.numpy() for c in model.encode(audio)]
    assert [level.shape for level in levels] == [(batch, frames), (batch, 2 * frames), (batch, 4 * frames)]
    ids = ORPHEUS.tokens(levels)
    assert ids.shape == (batch, 7 * frames)
    back = [torch.from_numpy(np.asarray(level).astype(np.int64)) for level in ORPHEUS.codes(ids)]
    for mine, theirs in zip(back, levels):
        assert_same(mine, theirs)
    decoded = []
    for codes in (back, [torch.from_numpy(x) for x in levels]):
        torch.manual_seed(1)  # SNAC's decoder adds noise (`noise=True`, as the 24 kHz model)
        with torch.no_grad():
            decoded.append(model.decode(codes).numpy())
    assert_same(*decoded)


@settings(max_examples=15)
@given(st.integers(1, 3), st.integers(0, 6), st.integers(0, 2**16))
def test_tokens_and_codes_round_trip(batch, frames, seed):
    rng = np.random.default_rng(seed)
    levels = tuple(rng.integers(0, 4096, (batch, rate * frames)) for rate in (1, 2, 4))
    ids = np.asarray(ORPHEUS.tokens(levels))
    assert ids.shape == (batch, 7 * frames)
    position = np.arange(7 * frames) % 7
    assert ((ids - 128266 - position * 4096 >= 0) & (ids - 128266 - position * 4096 < 4096)).all()
    for mine, theirs in zip(ORPHEUS.codes(ids), levels):
        assert_same(mine, theirs)


def test_bad_streams_and_levels_are_clear_errors():
    ids = np.asarray(ORPHEUS.tokens((np.ones((1, 2), int), np.ones((1, 4), int), np.ones((1, 8), int))))
    with pytest.raises(ValueError, match=r"`ids` has 13 tokens, not a whole number of frames \(7 tokens each\)"):
        ORPHEUS.codes(ids[:, :13])
    bad = ids.copy()
    bad[0, 8] = 128266  # position 1 of frame 1 holds position 0's code 0
    with pytest.raises(ValueError, match=r"`ids`\[0, 8\] = 128266 is outside position 1's range"):
        ORPHEUS.codes(bad)
    with pytest.raises(ValueError, match=r"SNAC's levels are \[B, T\], \[B, 2T\], \[B, 4T\] \(ratio 1:2:4\)"):
        ORPHEUS.tokens((np.ones((1, 2), int), np.ones((1, 3), int), np.ones((1, 8), int)))
    with pytest.raises(TypeError, match=r"`levels` must be SNAC's three levels"):
        ORPHEUS.tokens([np.ones((1, 2), int)] * 4)
