"""Presets against transformers itself (pinned in the test extra; tiny random-weight models built in code)."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_same
from transformers import (
    BarkCoarseModel,
    DacConfig,
    DacModel,
    DiaConfig,
    DiaFeatureExtractor,
    DiaForConditionalGeneration,
    DiaProcessor,
    DiaTokenizer,
    HiggsAudioV2Config,
    HiggsAudioV2ForConditionalGeneration,
    HiggsAudioV2Processor,
    KyutaiSpeechToTextConfig,
    KyutaiSpeechToTextForConditionalGeneration,
    MimiConfig,
    MoshiConfig,
    MoshiForConditionalGeneration,
    MusicgenConfig,
    MusicgenDecoderConfig,
    MusicgenForCausalLM,
)

from jax_patterns import lm, presets
from torch_compat import lm as torch_lm

CARD = 16
RNG = np.random.default_rng(0)
TINY = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2}


def tiny_musicgen(num_codebooks: int, audio_channels: int = 1, seed: int = 0) -> MusicgenForCausalLM:
    torch.manual_seed(seed)
    config = MusicgenDecoderConfig(
        vocab_size=CARD,
        max_position_embeddings=64,
        num_hidden_layers=2,
        ffn_dim=32,
        num_attention_heads=2,
        hidden_size=16,
        num_codebooks=num_codebooks,
        audio_channels=audio_channels,
        pad_token_id=CARD,
        bos_token_id=CARD,
        **{"decoder_start_token_id": CARD},  # read by `generate` (a generation field the config passes on)
    )
    model = MusicgenForCausalLM(config).eval()
    with torch.no_grad():  # default init gives near-uniform logits: raise the weights' scale
        for head in model.lm_heads:
            head.weight.mul_(8.0)
    return model


def as_hf(ids) -> torch.Tensor:
    """Our `[B, K, S]` -> transformers' `[B * K, S]`."""
    ids = np.asarray(ids)
    return torch.from_numpy(ids.reshape(-1, ids.shape[-1]).astype(np.int64))


@pytest.mark.parametrize(("k", "channels"), [(2, 1), (4, 1), (4, 2)])
@pytest.mark.parametrize("timesteps", [3, 6, 9])
def test_musicgen_delayed_ids_equal_build_delay_pattern_mask(k, channels, timesteps):
    model = tiny_musicgen(k, channels)
    preset = presets.from_transformers(model.config)
    assert isinstance(preset, presets.MusicGen)
    codes = RNG.integers(0, CARD, (3, k, timesteps))
    bos = np.full((3, k, 1), CARD)
    max_length = timesteps + max(preset.provider.delays) + 1
    inputs, mask = model.build_delay_pattern_mask(as_hf(np.concatenate([bos, codes], -1)), CARD, max_length)
    sequence = np.asarray(preset.sequence(codes))
    assert_same(mask.reshape(3, k, -1).numpy(), sequence)
    assert_same(inputs.reshape(3, k, -1).numpy(), sequence[..., : timesteps + 1])
    assert_same(model.apply_delay_pattern_mask(as_hf(sequence), mask).numpy(), as_hf(sequence).numpy())
    assert_same(preset.decode(sequence, timesteps), codes)


def test_musicgen_short_ids_come_back_undelayed_from_transformers():
    # a transformers quirk: below 2K - 1 steps its mask is not applied; the preset always delays
    model = tiny_musicgen(4)
    ids = as_hf(np.concatenate([np.full((1, 4, 1), CARD), RNG.integers(0, CARD, (1, 4, 1))], -1))
    inputs, _ = model.build_delay_pattern_mask(ids, CARD, max_length=5)
    assert_same(inputs.numpy(), ids.numpy())
    assert np.asarray(presets.MusicGen(4, CARD).sequence(np.zeros((1, 4, 1), int)))[0, 1, 1] == CARD


def hf_loss_and_logit_grads(model, input_ids, labels):
    """transformers' loss, its logits `[B, K, S, card]` and the loss's gradient with respect to them."""
    captured = []

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured.append(output)

    hooks = [head.register_forward_hook(keep) for head in model.lm_heads]
    try:
        out = model(input_ids=input_ids, labels=labels)
        out.loss.backward()
    finally:
        for hook in hooks:
            hook.remove()
    logits = torch.stack([c.detach() for c in captured], dim=1)
    grads = torch.stack([c.grad for c in captured], dim=1)
    return out.loss.item(), logits.numpy(), grads.numpy()


@pytest.mark.parametrize(("k", "channels"), [(2, 1), (4, 1), (4, 2)])
def test_musicgen_labels_loss_and_gradient_equal_transformers(k, channels):
    model = tiny_musicgen(k, channels, seed=1)
    preset = presets.from_transformers(model.config)
    assert isinstance(preset, presets.MusicGen)
    timesteps, lengths = 7, np.array([7, 3, 5])
    codes = RNG.integers(0, CARD, (3, k, timesteps))
    for given in (None, lengths):
        input_ids = preset.input_ids(codes, given)
        labels = torch.from_numpy(np.asarray(preset.labels(codes, given)).astype(np.int64))
        loss, logits, grads = hf_loss_and_logit_grads(model, as_hf(input_ids), labels)
        ours, grad = jax.value_and_grad(lambda x, g=given: preset.loss(x, codes, g)[0])(jnp.asarray(logits))
        np.testing.assert_allclose(float(ours), loss, rtol=2e-6)
        np.testing.assert_allclose(np.asarray(grad), grads, rtol=2e-5, atol=1e-9)


def test_musicgen_greedy_generate_equals_transformers_token_for_token():
    k, timesteps = 3, 8
    model = tiny_musicgen(k, seed=2)
    preset = presets.from_transformers(model.config)
    pattern = preset.provider.get_pattern(timesteps)
    steps = len(pattern)
    start = torch.full((2 * k, 1), CARD)
    with torch.no_grad():
        expected = model.generate(input_ids=start, max_length=steps, do_sample=False, num_return_sequences=1)
    assert tuple(expected.shape) == (2, k, timesteps)

    def hf_logits(prefix: np.ndarray, attend_to_bos: bool) -> np.ndarray:
        ids = as_hf(prefix)
        mask = None if attend_to_bos else (ids != CARD).long()
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits  # [B * K, n, card]
        return logits.reshape(2, k, -1, CARD)[:, :, -1].numpy()

    def step_fn_of(attend_to_bos: bool):
        def step_fn(state, tokens):  # the state is the prefix so far; transformers recomputes it (no cache)
            prefix, n = state
            prefix = jax.lax.dynamic_update_slice_in_dim(prefix, tokens, n, axis=2)
            n = n + tokens.shape[-1]
            shape = jax.ShapeDtypeStruct((2, k, CARD), jnp.float32)
            logits = jax.pure_callback(
                lambda p, m: hf_logits(np.asarray(p)[..., : int(m)], attend_to_bos), shape, prefix, n
            )
            return logits, (prefix, n)

        return step_fn

    state = (jnp.full((2, k, steps), CARD, jnp.int32), jnp.int32(0))
    prompt = np.zeros((2, k, 0), np.int32)
    hf_style = lm.generate(step_fn_of(False), state, pattern, prompt, special_token=CARD).codes
    assert_same(hf_style, expected.numpy())
    # audiocraft attends to the bos step: the same model driven by audiocraft's own loop
    audiocraft_style = lm.generate(step_fn_of(True), state, pattern, prompt, special_token=CARD).codes

    def full_prefix(seq: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(input_ids=seq.reshape(-1, seq.shape[-1])).logits.reshape(2, k, seq.shape[-1], CARD)

    reference = torch_lm.generate(full_prefix, pattern, torch.zeros((2, k, 0), dtype=torch.long), CARD)
    assert_same(audiocraft_style, reference.numpy())


def test_from_transformers_errors():
    with pytest.raises(
        ValueError,
        match=r"no preset for model_type='bert'; known: csm, dia, higgs_audio_v2, kyutai_speech_to_text, moshi, music",
    ):
        presets.from_transformers(types.SimpleNamespace(model_type="bert"))
    with pytest.raises(ValueError, match=r"the musicgen config has no `num_codebooks`"):
        presets.from_transformers(types.SimpleNamespace(model_type="musicgen", pad_token_id=3))
    with pytest.raises(ValueError, match=r"the kyutai_speech_to_text config has no `audio_bos_token_id`"):
        fields = {"num_codebooks": 2, "codebook_vocab_size": 9, "vocab_size": 5}
        presets.from_transformers(types.SimpleNamespace(model_type="kyutai_speech_to_text", **fields))
    with pytest.raises(ValueError, match=r"the dia config has no `eos_token_id`"):
        decoder = types.SimpleNamespace(bos_token_id=1, pad_token_id=2)
        presets.from_transformers(types.SimpleNamespace(model_type="dia", delay_pattern=[0], decoder_config=decoder))
    composite = MusicgenConfig(
        text_encoder={"model_type": "t5", "d_model": 8, "num_layers": 1, "num_heads": 1, "d_kv": 4, "d_ff": 8},
        audio_encoder={"model_type": "encodec", "num_filters": 2, "codebook_size": CARD},
        decoder={"model_type": "musicgen_decoder", "num_codebooks": 4, "pad_token_id": CARD, "audio_channels": 2},
    )
    assert presets.from_transformers(composite) == presets.MusicGen(4, CARD, 2)


@pytest.mark.parametrize("k", [2, 4, 8])
@pytest.mark.parametrize(("timesteps", "max_length"), [(5, 6), (3, 9), (1, 2)])
def test_moshi_delayed_ids_equal_build_delay_pattern_mask(k, timesteps, max_length):
    config = MoshiConfig(num_codebooks=k, audio_vocab_size=CARD)
    preset = presets.from_transformers(config)
    assert preset == presets.Moshi(k, CARD)
    codes = RNG.integers(0, CARD, (3, k, timesteps))
    # transformers' own method; it reads nothing of the model but its generation config
    holder = types.SimpleNamespace(generation_config=types.SimpleNamespace(max_length=max_length))
    ids, mask = MoshiForConditionalGeneration.build_delay_pattern_mask(
        holder, torch.from_numpy(codes), bos_token_id=CARD, pad_token_id=CARD, max_length=max_length
    )
    sequence = np.asarray(preset.sequence(codes, timesteps=max_length - 1))
    assert_same(mask.numpy(), sequence)
    assert_same(ids.numpy(), sequence[..., :timesteps])
    if max_length == timesteps + 1:  # training: the labels Moshi's forward builds
        assert_same(preset.labels(codes), ids.numpy())
        assert_same(preset.decode(sequence, timesteps), codes)


@pytest.mark.parametrize(("k", "lengths"), [(2, [5, 1, 3]), (8, [2]), (4, [0, 4])])
def test_moshi_variable_length_batches_equal_each_example_alone(k, lengths):
    """`lengths=`: example `b`'s labels and undo are `build_delay_pattern_mask` on that example alone, pad after."""
    preset = presets.Moshi(k, CARD)
    lengths = np.asarray(lengths)
    codes = RNG.integers(0, CARD, (len(lengths), k, int(lengths.max())))
    labels = np.asarray(preset.labels(codes, lengths))
    holder = types.SimpleNamespace(generation_config=types.SimpleNamespace(max_length=None))
    for b, n in enumerate(int(n) for n in lengths):
        mask = MoshiForConditionalGeneration.build_delay_pattern_mask(
            holder, torch.from_numpy(codes[b : b + 1, :, :n]), bos_token_id=CARD, pad_token_id=CARD, max_length=n + 1
        )[1]
        assert_same(labels[b, :, :n], mask[0, :, :n].numpy(), f"b={b}")
        assert (labels[b, :, n + 1 :] == CARD).all()
    full = np.asarray(preset.sequence(codes, lengths=lengths))
    back = np.asarray(preset.decode(full, codes.shape[-1], lengths=lengths))
    kept = np.arange(codes.shape[-1]) < lengths[:, None, None]
    assert_same(np.where(kept, back, -1), np.where(kept, codes, -1))


def tiny_mimi(num_codebooks: int) -> MimiConfig:
    """A tiny Mimi codec config (8 samples a frame, codebooks of 32)."""
    return MimiConfig(
        **TINY,
        num_filters=4,
        num_residual_layers=1,
        upsampling_ratios=[2, 2],
        codebook_size=32,
        codebook_dim=8,
        vector_quantization_hidden_dimension=8,
        num_semantic_quantizers=1,
        num_quantizers=num_codebooks,
        head_dim=8,
        intermediate_size=32,
        sliding_window=16,
        upsample_groups=16,
    )


@pytest.mark.parametrize(("k", "timesteps", "batch"), [(3, 5, 2), (2, 1, 1), (4, 7, 3)])
def test_moshi_depth_loss_and_gradient_equal_the_model(k, timesteps, batch):
    """`MoshiForConditionalGeneration(text_labels=, audio_labels=)`'s depth loss, from its `audio_logits`."""
    torch.manual_seed(0)
    depth = TINY | {"ffn_dim": 32, "max_position_embeddings": k + 1, "sliding_window": k + 1}
    config = MoshiConfig(
        vocab_size=20,
        **TINY,
        ffn_dim=32,
        num_codebooks=k,
        max_position_embeddings=64,
        sliding_window=64,
        audio_encoder_config=tiny_mimi(k).to_dict(),
        depth_decoder_config=depth,
    )
    model = MoshiForConditionalGeneration(config).eval()
    preset = presets.from_transformers(config)
    assert isinstance(preset, presets.Moshi)
    vocab = preset.audio_vocab_size
    text = torch.from_numpy(RNG.integers(0, 20, (batch, timesteps)))
    codes = RNG.integers(0, vocab, (batch, k, timesteps))
    user = torch.from_numpy(RNG.integers(0, vocab, (batch, k, timesteps)))
    with torch.no_grad():
        out = model(
            input_ids=text,
            moshi_audio_codes=torch.from_numpy(codes),
            user_audio_codes=user,
            text_labels=text,
            audio_labels=torch.from_numpy(codes),
        )
    logits = out.audio_logits.detach().requires_grad_(True)  # [B * T, K, V]
    # the depth decoder's own loss on a copy of its logits, for the gradient: its labels are Moshi's delayed labels
    labels = torch.from_numpy(np.asarray(preset.labels(codes)).astype(np.int64)).transpose(1, 2).reshape(-1, k)
    expected = torch.nn.CrossEntropyLoss()(
        logits.reshape(-1, vocab), labels.masked_fill(labels == vocab, -100).reshape(-1)
    )
    expected.backward()
    np.testing.assert_allclose(float(expected.detach()), float(out.depth_loss), rtol=1e-6)
    ours = logits.detach().numpy().reshape(batch, timesteps, k, vocab).transpose(0, 2, 1, 3)
    loss, grad = jax.value_and_grad(lambda x: preset.loss(x, codes)[0])(ours)
    np.testing.assert_allclose(float(loss), float(out.depth_loss), rtol=1e-5)
    grad = np.asarray(grad).transpose(0, 2, 1, 3).reshape(logits.shape)
    # the tiny depth decoder's logits span hundreds of nats, so most softmax terms are ~1e-8: float32 rounding there
    np.testing.assert_allclose(grad, logits.grad.numpy(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_higgs_audio_batches_labels_and_revert_equal_the_processor(k):
    config = HiggsAudioV2Config(num_codebooks=k, audio_stream_bos_id=CARD, audio_stream_eos_id=CARD + 1)
    preset = presets.from_transformers(config)
    assert isinstance(preset, presets.HiggsAudio)
    holder = types.SimpleNamespace(audio_stream_bos_id=CARD, audio_stream_eos_id=CARD + 1)  # what the methods read
    lengths = np.array([6, 2, 4])
    codes = RNG.integers(0, CARD, (3, k, 6))
    # the processor, one example at a time: frame with bos/eos, delay (its own method), then pad with eos and stack
    delayed = []
    for b, n in enumerate(lengths):
        framed = torch.cat(
            [torch.full((1, k, 1), CARD), torch.from_numpy(codes[b : b + 1, :, :n]), torch.full((1, k, 1), CARD + 1)],
            dim=2,
        )
        delayed.append(HiggsAudioV2Processor.build_delay_pattern(holder, framed)[0].transpose(0, 1))
    longest = max(d.shape[0] for d in delayed)
    expected = torch.stack(
        [torch.nn.functional.pad(d, (0, 0, 0, longest - d.shape[0]), value=CARD + 1) for d in delayed]
    )
    ids, mask, labels = preset.inputs(codes, lengths)
    assert_same(ids, expected.numpy())
    assert_same(mask, (np.arange(longest)[None, :] < np.array([d.shape[0] for d in delayed])[:, None]))
    expected_labels = expected.clone()
    expected_labels[(expected == CARD) | (expected == CARD + 1)] = -100
    assert_same(labels, expected_labels.numpy())
    for b, n in enumerate(lengths):  # the undo: the processor reverts one example's ids without its bos frame row
        mine = preset.decode(np.asarray(preset.sequence(codes[b : b + 1, :, :n])), int(n))
        theirs = HiggsAudioV2Processor.revert_delay_pattern(holder, delayed[b][1:-1])
        assert_same(mine[0], theirs.transpose(0, 1)[:, : int(n)].numpy())
        assert_same(mine[0], codes[b, :, :n])
    batch = np.asarray(preset.decode(np.swapaxes(expected.numpy(), 1, 2), 6, lengths))  # the whole eos-padded batch
    for b, n in enumerate(lengths):
        assert_same(batch[b, :, :n], codes[b, :, :n])
        assert (batch[b, :, n:] == CARD + 1).all()


@pytest.mark.parametrize(("k", "lengths"), [(3, [4, 2]), (2, [1]), (4, [3, 5, 2])])
def test_higgs_audio_loss_and_gradient_equal_the_model(k, lengths):
    """`HiggsAudioV2ForConditionalGeneration(audio_labels=...)`'s loss and its gradient, from its audio logits.

    Each example is a text row with the audio placeholders in the middle; the
    model puts the processor-layout ids there and scores the next audio token.
    """
    torch.manual_seed(0)
    card, text_vocab = 16, 64
    config = HiggsAudioV2Config(
        vocab_size=text_vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=64,
        num_codebooks=k,
        codebook_size=card + 2,  # the codes, then the stream's bos and eos
        audio_token_id=60,
        audio_bos_token_id=61,
        audio_delay_token_id=62,
        audio_stream_bos_id=card,
        audio_stream_eos_id=card + 1,
        pad_token_id=63,
    )
    model = HiggsAudioV2ForConditionalGeneration(config).eval()
    preset = presets.from_transformers(config)
    assert isinstance(preset, presets.HiggsAudio)
    lengths = np.asarray(lengths)
    codes = RNG.integers(0, card, (len(lengths), k, int(lengths.max())))
    ids, mask, labels = (np.array(x) for x in preset.inputs(codes, lengths))
    steps = mask.sum(1)
    width = int(steps.max()) + 3
    input_ids = np.full((len(lengths), width), 63)
    for b, n in enumerate(steps):
        input_ids[b, : n + 3] = [5, 6, *[60] * int(n), 7]  # text, the audio placeholders, text
    captured = []

    def keep(module, args, out):  # the logits, kept with their gradient (returns None: the output is unchanged)
        out.retain_grad()
        captured.append(out)

    hook = model.audio_lm_head.register_forward_hook(keep)
    try:
        out = model(
            input_ids=torch.from_numpy(input_ids),
            attention_mask=torch.from_numpy((input_ids != 63).astype(np.int64)),
            audio_input_ids=torch.from_numpy(ids.astype(np.int64)),
            audio_input_ids_mask=torch.from_numpy(mask),
            audio_labels=torch.from_numpy(labels.astype(np.int64)),
        )
        out.loss.backward()
    finally:
        hook.remove()
    logits, grads = (
        x.detach().numpy().reshape(len(lengths), width, k, card + 2) for x in (captured[0], captured[0].grad)
    )
    audio = np.arange(ids.shape[1])[None, :] + 2  # the audio positions of each row
    ours = np.take_along_axis(logits, audio[..., None, None], axis=1).transpose(0, 2, 1, 3)  # [B, K, S, V]
    loss, grad = jax.value_and_grad(lambda x: preset.loss(x, codes, lengths)[0])(ours)
    np.testing.assert_allclose(float(loss), float(out.loss.detach()), rtol=1e-5)
    expected = np.take_along_axis(grads, audio[..., None, None], axis=1).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-4, atol=1e-9)
    assert np.abs(grads).sum() == pytest.approx(np.abs(expected).sum(), rel=1e-6)  # nothing outside the audio


DIA_DELAYS = [[0, 8, 9, 10, 11, 12, 13, 14, 15], [1, 3, 2], [2, 0, 1, 0]]


def tiny_dia(delays: list[int], seed: int = 0):
    """A real `DiaProcessor` over a tiny random DAC (hop 4: 4 samples a frame), and a tiny Dia model."""
    torch.manual_seed(seed)
    dac = DacModel(
        DacConfig(
            encoder_hidden_size=8,
            downsampling_ratios=[2, 2],
            decoder_hidden_size=16,
            n_codebooks=len(delays),
            codebook_size=1024,
            codebook_dim=4,
        )
    ).eval()
    processor = DiaProcessor(DiaFeatureExtractor(hop_length=4, sampling_rate=44100), DiaTokenizer(), dac)
    small = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    small |= {"num_key_value_heads": 1, "head_dim": 8}
    config = DiaConfig(
        encoder_config=small | {"vocab_size": 256},
        decoder_config=small
        | {"num_channels": len(delays), "cross_num_attention_heads": 2, "cross_head_dim": 8}
        | {"cross_num_key_value_heads": 1, "cross_hidden_size": 16},
        delay_pattern=delays,
    )
    model = DiaForConditionalGeneration(config).eval()
    return processor, dac, model


def dia_batch(dac, frames: list[int]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Audio clips of `frames[b]` codec frames, and their codes `[B, C, max]` (right-padded) with lengths."""
    audio = [RNG.standard_normal(4 * n).astype(np.float32) for n in frames]
    codes = np.zeros((len(frames), dac.config.n_codebooks, max(frames)), np.int64)
    with torch.no_grad():
        for b, clip in enumerate(audio):
            codes[b, :, : frames[b]] = dac.encode(torch.from_numpy(clip)[None, None]).audio_codes[0].numpy()
    return audio, codes, np.asarray(frames)


@pytest.mark.parametrize("delays", DIA_DELAYS, ids=str)
@pytest.mark.parametrize("frames", [[5, 2, 7], [3], [1, 4]], ids=str)
def test_dia_inputs_and_labels_equal_the_processor(delays, frames):
    """Left-padded batches of different lengths, training (eos frame, labels) and generation, vs `DiaProcessor`."""
    processor, dac, _ = tiny_dia(delays)
    config = DiaConfig(delay_pattern=delays, decoder_config={"num_channels": len(delays)})
    preset = presets.from_transformers(config)
    assert isinstance(preset, presets.Dia) and preset.delay_pattern == tuple(delays)
    assert (preset.bos_token_id, preset.pad_token_id, preset.eos_token_id) == (1026, 1025, 1024)
    audio, codes, lengths = dia_batch(dac, frames)
    for generation in (False, True):
        theirs = processor(
            text=["hi"] * len(frames),
            audio=audio,
            output_labels=not generation,
            generation=generation,
            delay_pattern=delays,
            padding="longest",  # the default `True` warns that the tokenizer's max_length is ignored
        )
        mine = preset.inputs(codes, lengths, generation=generation)
        assert set(mine) == {"decoder_input_ids", "decoder_attention_mask"} | (set() if generation else {"labels"})
        for key, value in mine.items():
            assert_same(value, theirs[key].numpy(), f"{key} generation={generation}")
        width = theirs["decoder_input_ids"].shape[1]  # `sequence` is the ids before the training cut
        assert_same(
            jnp.swapaxes(preset.sequence(codes, lengths, generation=generation), 1, 2)[:, :width],
            mine["decoder_input_ids"],
        )


@pytest.mark.parametrize(
    ("delays", "frames"), [(DIA_DELAYS[0], [5, 2, 7]), (DIA_DELAYS[1], [3, 1]), (DIA_DELAYS[2], [4])]
)
def test_dia_loss_and_gradient_equal_the_model(delays, frames):
    """The model's own loss (`DiaForConditionalGeneration(labels=...)`) and its gradient, from its logits."""
    processor, dac, model = tiny_dia(delays)
    preset = presets.from_transformers(model.config)
    assert isinstance(preset, presets.Dia)
    audio, codes, lengths = dia_batch(dac, frames)
    batch = processor(
        text=["hi"] * len(frames),
        audio=audio,
        output_labels=True,
        generation=False,
        delay_pattern=delays,
        padding="longest",
    )
    with torch.no_grad():
        out = model(**batch)
    logits = out.logits.detach().requires_grad_(True)  # [B * C, S - 1, V]
    expected = model.loss_function(
        logits=logits, labels=batch["labels"], vocab_size=model.config.decoder_config.vocab_size
    )
    expected.backward()
    np.testing.assert_allclose(float(expected.detach()), float(out.loss), rtol=1e-6)
    ours = logits.detach().numpy().reshape(len(frames), len(delays), -1, logits.shape[-1])
    loss, grad = jax.value_and_grad(lambda x: preset.loss(x, codes, lengths)[0])(ours)
    np.testing.assert_allclose(float(loss), float(expected.detach()), rtol=1e-5)
    np.testing.assert_allclose(grad.reshape(logits.shape), logits.grad.numpy(), rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("delays", [DIA_DELAYS[0], [0, 3, 1]], ids=str)
def test_dia_decode_equals_batch_decode(delays):
    """Generated ids (left-padded prompts, eos at different steps, pad after) undone as `batch_decode` does.

    `batch_decode` returns audio, so the comparison runs our codes through the
    same DAC: equal audio, example by example, with and without `audio_prompt_len`.
    """
    processor, dac, _ = tiny_dia(delays)
    preset = presets.Dia(tuple(delays), bos_token_id=1026, pad_token_id=1025, eos_token_id=1024)
    prompt, generated = np.array([3, 1, 2]), np.array([4, 6, 1])  # frames before and after the common prompt end
    width = int((prompt.max() + generated).max()) + 2  # frames of the finished batch: codes, eos, one pad frame
    left = prompt.max() - prompt  # left padding of each prompt (bos frames)
    codes = RNG.integers(0, 1024, (3, len(delays), width))
    t = np.arange(width)
    end = left + prompt + generated  # each example's eos frame
    frames = np.where(t < left[:, None], 1026, np.where(t == end[:, None], 1024, codes.transpose(1, 0, 2))).transpose(
        1, 0, 2
    )
    pattern = preset.provider.get_pattern(width)
    ids, _, _ = pattern.build_pattern_sequence(frames, 1026, lengths=end + 1, fill_after=1025)  # HF's generated layout
    hf_ids = torch.from_numpy(np.swapaxes(np.asarray(ids), 1, 2).astype(np.int64))
    for prompt_len in (None, int(prompt.max()) + 1):  # transformers' get_audio_prompt_len: frames + its bos frame
        theirs = processor.batch_decode(hf_ids, audio_prompt_len=prompt_len, delay_pattern=delays)
        mine, mine_lengths = preset.decode(ids, prompt_len)
        first = left + 0 if prompt_len is None else np.full(3, prompt.max())
        assert_same(mine_lengths, end - first)
        for b in range(3):
            own = np.asarray(mine[b, :, : int(mine_lengths[b])])
            assert_same(own, frames[b, :, first[b] : end[b]])
            with torch.no_grad():
                audio = dac.decode(audio_codes=torch.from_numpy(own[None].astype(np.int64))).audio_values.squeeze()
            assert_same(audio.numpy(), theirs[b].numpy(), f"b={b} prompt_len={prompt_len}")


def test_dia_decode_with_a_first_delay_keeps_batch_decodes_window():
    """`batch_decode` assumes `delay_pattern[0] == 0`: with 1 its window starts a frame late and ends on eos.

    transformers then hands the eos code to the DAC, which refuses it; `Dia.decode`
    returns that same window (what `batch_decode` would decode), documented in docs/presets.md.
    """
    delays = [1, 3, 2]
    processor, _, _ = tiny_dia(delays)
    preset = presets.Dia(tuple(delays), bos_token_id=1026, pad_token_id=1025, eos_token_id=1024)
    left, end, width = np.array([0, 2]), np.array([5, 4]), 7
    frames = RNG.integers(0, 1024, (2, 3, width))
    frames = np.where(np.arange(width) < left[:, None, None], 1026, frames)
    frames = np.where(np.arange(width) == end[:, None, None], 1024, frames)
    ids, _, _ = preset.provider.get_pattern(width).build_pattern_sequence(
        frames, 1026, lengths=end + 1, fill_after=1025
    )
    mine, lengths = preset.decode(ids)
    for b in range(2):
        assert_same(mine[b, :, : int(lengths[b])], frames[b, :, left[b] + 1 : end[b] + 1])  # one late, eos last
    with pytest.raises(IndexError):
        processor.batch_decode(
            torch.from_numpy(np.swapaxes(np.asarray(ids), 1, 2).astype(np.int64)), delay_pattern=delays
        )


@pytest.mark.parametrize("delays", [DIA_DELAYS[0], [0, 2, 1]], ids=str)
def test_dia_left_padded_prompts_through_lm_generate(delays):
    """A Dia batch of audio prompts of different lengths, continued with `lm.generate`.

    The prompt is `Dia.frames(..., generation=True)`: left-padded with bos, one
    length for every example. The sequence `generate` decodes from equals the
    processor's generation ids wherever those are known (all but the pads the
    processor leaves for the model to predict), and `Dia.decode` gives each
    prompt back, then the new frames.
    """
    processor, dac, _ = tiny_dia(delays)
    preset = presets.Dia(tuple(delays), bos_token_id=1026, pad_token_id=1025, eos_token_id=1024)
    frames = [3, 1, 5]
    audio, codes, lengths = dia_batch(dac, frames)
    expected = processor(text=["hi"] * 3, audio=audio, generation=True, delay_pattern=delays, padding="longest")
    expected = np.swapaxes(expected["decoder_input_ids"].numpy(), 1, 2)  # [B, C, S0]
    prompt, _ = preset.frames(codes, lengths, generation=True)
    new = 4
    pattern = preset.provider.get_pattern(prompt.shape[-1] + new)

    def step_fn(state, tokens):  # a deterministic "model": predicts (position * 7) % 1024 in every channel
        position = state + tokens.shape[-1]
        logits = jax.nn.one_hot(position * 7 % 1024, 1027) * 10.0
        return jnp.broadcast_to(logits, (*tokens.shape[:2], 1027)), position

    out = lm.generate(step_fn, jnp.int32(0), pattern, prompt, special_token=1026, fill_after=1025).codes
    seq, _, _ = pattern.build_pattern_sequence(out, 1026, fill_after=1025)  # what generate decoded from and wrote
    known = expected != 1025  # the processor's pads are the positions the model predicts
    assert_same(np.where(known, np.asarray(seq)[..., : expected.shape[-1]], -1), np.where(known, expected, -1))
    decoded, decoded_lengths = preset.decode(seq)
    left = prompt.shape[-1] - lengths
    for b, n in enumerate(frames):  # batch_decode ends one frame early without an eos frame: the frame before pad
        assert int(decoded_lengths[b]) == prompt.shape[-1] + new - 1 - left[b]
        assert_same(decoded[b, :, :n], codes[b, :, :n])
        assert_same(
            decoded[b, :, n : n + new - 1], np.asarray(out)[b, :, prompt.shape[-1] : prompt.shape[-1] + new - 1]
        )


def tiny_kyutai_stt(num_codebooks: int, seed: int = 0):
    """A tiny random `KyutaiSpeechToTextForConditionalGeneration` over a tiny Mimi (8 samples a frame).

    Mimi's codebooks start at zero (every code 0): they are filled with random
    vectors so the codes differ from frame to frame.
    """
    torch.manual_seed(seed)
    codec = tiny_mimi(num_codebooks)
    vocab, card = 40, 33
    config = KyutaiSpeechToTextConfig(
        codebook_vocab_size=card,
        vocab_size=vocab,
        **TINY,
        max_position_embeddings=64,
        ffn_dim=32,
        num_codebooks=num_codebooks,
        audio_bos_token_id=32,
        audio_pad_token_id=vocab + num_codebooks * card,
        pad_token_id=3,
        bos_token_id=39,
        sliding_window=32,
        codec_config=codec.to_dict(),
    )
    model = KyutaiSpeechToTextForConditionalGeneration(config).eval()
    with torch.no_grad():
        for module in model.codec_model.modules():
            if type(module).__name__ == "MimiEuclideanCodebook":
                module.embed_sum.normal_()
                module._embed = None
    return model


@pytest.mark.parametrize(("num_codebooks", "frames", "batch"), [(3, 6, 2), (2, 9, 1), (4, 4, 3)])
def test_kyutai_stt_inputs_equal_what_generate_feeds_the_model(num_codebooks, frames, batch):
    """Every position `generate` feeds the model (captured with a hook), and its embedding rows."""
    model = tiny_kyutai_stt(num_codebooks)
    preset = presets.from_transformers(model.config)
    assert isinstance(preset, presets.KyutaiSTT)
    audio = torch.from_numpy(RNG.standard_normal((batch, 1, 8 * frames)).astype(np.float32))
    fed: list[torch.Tensor] = []

    def capture(module, args, kwargs):
        fed.append(kwargs["input_ids"].clone())

    hook = model.model.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        with torch.no_grad():
            text = model.generate(input_values=audio, do_sample=False)
    finally:
        hook.remove()
    with torch.no_grad():
        codes = model.codec_model.encode(audio).audio_codes.numpy()  # [B, K, T], the whole clip at once
    assert codes.shape == (batch, num_codebooks, frames)
    theirs = torch.cat(fed, dim=1).numpy()  # [B, T, 1 + K]: one position per step, T steps
    mine = preset.input_ids(text[:, :-1].numpy(), codes)
    assert_same(mine, theirs)
    assert len(np.unique(codes)) > 3  # real codes, not a constant
    rows = preset.embedding_ids(mine)
    with torch.no_grad():
        expected = model.model.embed_tokens(torch.from_numpy(theirs))
        ours = model.model.embed_tokens.embed_tokens.weight[torch.from_numpy(np.array(rows))].sum(dim=2)
    assert_same(ours.numpy(), expected.numpy())


def test_kyutai_stt_lengths_pad_past_each_clip():
    preset = presets.KyutaiSTT(2, codebook_vocab_size=9, vocab_size=5, audio_bos_token_id=8, audio_pad_token_id=23)
    codes = RNG.integers(0, 8, (3, 2, 4))
    ids = np.asarray(preset.audio_ids(codes, lengths=np.array([4, 0, 2])))
    assert_same(ids[0], preset.audio_ids(codes[:1])[0])
    assert_same(ids[1], np.array([[8, 23, 23, 23, 23]] * 2))
    assert_same(ids[2, :, :3], preset.audio_ids(codes[2:, :, :2])[0])
    assert (ids[2, :, 3:] == 23).all()
    padded = preset.embedding_ids(preset.input_ids(np.zeros((3, 5), int), codes, np.array([4, 0, 2])))
    assert (np.asarray(padded)[1, 1:, 1:] == 23).all()  # the table's padding row, never offset


@pytest.mark.parametrize(("frames", "semantic"), [(10, 7), (40, 30), (300, 250), (3, 1)])
def test_bark_coarse_history_equals_preprocess_histories(frames, semantic):
    from transformers.models.bark.generation_configuration_bark import (
        BarkCoarseGenerationConfig,
        BarkSemanticGenerationConfig,
    )

    coarse_config, semantic_config = BarkCoarseGenerationConfig(), BarkSemanticGenerationConfig()
    ratio = coarse_config.coarse_rate_hz / semantic_config.semantic_rate_hz * coarse_config.n_coarse_codebooks
    preset = presets.BarkCoarse(coarse_config.n_coarse_codebooks, 1024, semantic_config.semantic_vocab_size)
    coarse = RNG.integers(0, 1024, (2, frames))
    prompt = {
        "semantic_prompt": torch.from_numpy(RNG.integers(0, 10_000, semantic)),
        "coarse_prompt": torch.from_numpy(coarse),
    }
    _, expected = BarkCoarseModel.preprocess_histories(
        types.SimpleNamespace(device="cpu"),  # transformers' own method; it reads nothing else of the model
        max_coarse_history=coarse_config.max_coarse_history,
        semantic_to_coarse_ratio=ratio,
        batch_size=2,
        semantic_generation_config=semantic_config,
        codebook_size=1024,
        history_prompt=prompt,
    )
    mine = preset.history(coarse, semantic, coarse_config.max_coarse_history, ratio)
    assert_same(np.broadcast_to(np.asarray(mine), expected.shape), expected.numpy())
    assert_same(preset.codes(preset.stream(coarse[None])), coarse[None])
