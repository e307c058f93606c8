"""`presets.CSM` against transformers' `CsmProcessor` and `CsmForConditionalGeneration` (tiny, built in code)."""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_same
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    CsmConfig,
    CsmForConditionalGeneration,
    CsmProcessor,
    EncodecFeatureExtractor,
    LogitsProcessor,
    LogitsProcessorList,
    MimiConfig,
    PreTrainedTokenizerFast,
)

from jax_patterns import lm, presets

TINY = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2}
WORDS = ["pad", "bos", "s0", "s1", "hello", "world", "hi"]  # then <|AUDIO|> = 7, <|audio_eos|> = 8
VOCAB, PAD = 12, 11  # codebook vocabulary: Mimi's 8 codes, then CSM's specials; the codebook pad is 11


def tiny_processor() -> CsmProcessor:
    """A real `CsmProcessor` over a word-level tokenizer built in code (left padding, as CSM's)."""
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="pad"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="pad", additional_special_tokens=["<|AUDIO|>", "<|audio_eos|>"]
    )
    return CsmProcessor(EncodecFeatureExtractor(feature_size=1, sampling_rate=24000), fast)


def tiny_csm(k: int, seed: int = 0) -> CsmForConditionalGeneration:
    """A tiny random CSM over a tiny Mimi (8 codes per codebook, 8 samples a frame)."""
    torch.manual_seed(seed)
    codec = {"num_filters": 4, "num_residual_layers": 1, "upsampling_ratios": [2, 2], "codebook_size": 8}
    codec |= {"codebook_dim": 8, "vector_quantization_hidden_dimension": 8, "num_semantic_quantizers": 1}
    codec |= {"num_quantizers": k, "head_dim": 8, "intermediate_size": 32, "sliding_window": 16, "upsample_groups": 16}
    mimi = MimiConfig(**TINY, **codec)
    depth = TINY | {"num_codebooks": k, "vocab_size": VOCAB, "backbone_hidden_size": 16, "intermediate_size": 32}
    config = CsmConfig(
        **TINY,
        num_codebooks=k,
        vocab_size=VOCAB,
        text_vocab_size=len(WORDS) + 2,
        intermediate_size=32,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        audio_token_id=7,
        audio_eos_token_id=8,
        codebook_eos_token_id=0,
        codebook_pad_token_id=PAD,
        depth_decoder_config=depth | {"max_position_embeddings": k + 1},
        codec_config=mimi.to_dict(),
    )
    model = CsmForConditionalGeneration(config).eval()
    with torch.no_grad():  # default init gives near-uniform logits: raise the weights' scale
        model.lm_head.weight.mul_(8.0)
        model.depth_decoder.codebooks_head.weight.mul_(8.0)
        for module in model.codec_model.modules():  # Mimi's codebooks start at zero: random, so codes differ
            if type(module).__name__ == "MimiEuclideanCodebook":
                module.embed_sum.normal_()
                module._embed = None
    return model


def encoded_length_kwargs(model: CsmForConditionalGeneration) -> dict:
    """The processor's frame count for this codec: its convolutions' kernel sizes, strides and dilations."""
    encoder = model.codec_model.encoder
    layers = [encoder.encoder_seanet.get_submodule(name) for name in encoder.encoder_seanet._conv1d_layer_names]
    layers += [encoder.downsample]
    return {
        "kernel_sizes": [layer.conv.kernel_size[0] for layer in layers],
        "strides": [layer.conv.stride[0] for layer in layers],
        "dilations": [layer.conv.dilation[0] for layer in layers],
        "use_causal_conv": tp.cast(tp.Any, model.config.codec_config).use_causal_conv,
    }


def example_codes(model, batch) -> tuple[np.ndarray, np.ndarray]:
    """Each example's frames (its clips encoded one by one, as the model does, in order): `[B, K, T]`, lengths."""
    per_example = []
    with torch.no_grad():
        for values, cutoffs in zip(batch["input_values"], batch["input_values_cutoffs"]):
            ends = [0, *[int(c) for c in cutoffs if c >= 0]]
            clips = [model.codec_model.encode(values[None, :, a:b]).audio_codes[0] for a, b in zip(ends, ends[1:])]
            per_example.append(torch.cat(clips, dim=-1).numpy() if clips else np.zeros((model.config.num_codebooks, 0)))
    lengths = np.array([c.shape[-1] for c in per_example])
    codes = np.zeros((len(per_example), model.config.num_codebooks, int(lengths.max())), np.int64)
    for b, c in enumerate(per_example):
        codes[b, :, : c.shape[-1]] = c
    return codes, lengths


@pytest.mark.parametrize("k", [2, 3])
def test_frames_embeddings_labels_and_loss_equal_the_model(k):
    """The processor's ids (left-padded, two clips in one example, none in another), the model's merged
    embeddings and expanded labels (`_merge_input_ids_with_input_values`), and its loss with `labels`."""
    model, processor = tiny_csm(k), tiny_processor()
    preset = presets.from_transformers(model.config)
    assert preset == presets.CSM(k, VOCAB, audio_token_id=7, audio_eos_token_id=8, codebook_pad_token_id=PAD)
    rng = np.random.default_rng(k)
    audio = [rng.standard_normal(n).astype(np.float32) for n in (24, 16, 40)]
    text = ["s0 hello <|AUDIO|><|audio_eos|> s1 world <|AUDIO|><|audio_eos|>", "s0 hi <|AUDIO|><|audio_eos|>", "s1 hi"]
    torch.manual_seed(1)  # the processor draws the frames the depth decoder skips (-101)
    batch = processor(text=text, audio=audio, output_labels=True, depth_decoder_labels_ratio=0.5,
                      audio_kwargs={"encoded_length_kwargs": encoded_length_kwargs(model)})  # fmt: skip
    codes, lengths = example_codes(model, batch)
    assert len(np.unique(codes)) > 3 and (batch["labels"] == -101).any()
    input_ids = batch["input_ids"].numpy()
    with torch.no_grad():
        merged: tp.Any = model._merge_input_ids_with_input_values(
            batch["input_ids"], batch["input_values"], batch["input_values_cutoffs"], batch["labels"]
        )
    frames = preset.frames(input_ids, codes, lengths)
    rows = torch.from_numpy(np.asarray(preset.embedding_ids(frames)).astype(np.int64))
    audio_at = torch.tensor(np.array(preset.audio_positions(input_ids)))
    with torch.no_grad():
        ours = torch.where(
            audio_at[..., None],
            model.backbone_model.embed_tokens.embed_audio_tokens(rows).sum(dim=2),
            model.embed_text_tokens(batch["input_ids"]),
        )
    assert_same(ours.numpy(), merged["inputs_embeds"].numpy())
    depth = ~(batch["labels"].numpy() == -101)
    labels = preset.labels(input_ids, codes, lengths, depth=depth)
    assert_same(labels, merged["labels"].numpy())
    with torch.no_grad():
        out = model(**batch)
    train = np.argwhere((np.asarray(labels)[..., 1:] != -100).any(-1))  # the frames the depth decoder learns, in order
    depth_logits = np.zeros((*input_ids.shape, k - 1, VOCAB), np.float32)
    depth_logits[train[:, 0], train[:, 1]] = out.depth_decoder_logits.numpy()
    loss, backbone, depth_loss = preset.loss(out.logits.numpy(), depth_logits, labels)
    np.testing.assert_allclose(float(backbone), float(out.backbone_loss), rtol=1e-5)
    np.testing.assert_allclose(float(depth_loss), float(out.depth_decoder_loss), rtol=1e-5)
    np.testing.assert_allclose(float(loss), float(out.loss), rtol=1e-5)


def test_greedy_generate_equals_transformers_frame_for_frame():
    """`lm.generate` on the preset's pattern, driving transformers' own backbone and depth decoder through a host
    callback (`step_returns="tokens"`: the step function returns each frame), equals `CsmForConditionalGeneration.
    generate` (greedy, text prompts) frame for frame."""
    k, new = 3, 5
    model = tiny_csm(k, seed=2)
    preset = presets.from_transformers(model.config)
    text = torch.tensor([[1, 2, 4, 5], [1, 3, 6, 4]])
    with torch.no_grad():
        expected = model.generate(
            input_ids=text, attention_mask=torch.ones_like(text), max_new_tokens=new, do_sample=False
        ).numpy()  # fmt: skip [B, N, K]
    assert expected.shape[0] == 2 and 1 <= expected.shape[1] <= new

    def next_frame(frames: np.ndarray) -> np.ndarray:
        """Backbone on the text and the frames so far, greedy codebook 0, then the depth decoder's own generate."""
        with torch.no_grad():
            embeds = model.embed_text_tokens(text)
            if frames.shape[-1]:
                audio = torch.from_numpy(np.swapaxes(frames, 1, 2).astype(np.int64))
                embeds = torch.cat([embeds, model.backbone_model.embed_tokens(audio)], dim=1)
            out = model(inputs_embeds=embeds, output_hidden_states=True)
            first = out.logits[:, -1].argmax(-1)
            depth = model.depth_decoder.generate(
                input_ids=torch.nn.functional.pad(first[:, None], (1, 0)),
                backbone_last_hidden_state=out.hidden_states[-1][:, -1].clone(),
                do_sample=False, min_new_tokens=k - 1, max_new_tokens=k - 1,
            )  # fmt: skip
        return depth[:, 1:].numpy().astype(np.int32)

    def step_fn(state, tokens):  # the state is every step so far (the special step, then the frames)
        steps, n = state
        steps = jax.lax.dynamic_update_slice_in_dim(steps, tokens, n, axis=2)
        n = n + tokens.shape[-1]
        shape = jax.ShapeDtypeStruct((2, k), jnp.int32)
        frame = jax.pure_callback(lambda s, m: next_frame(np.asarray(s)[:, :, 1 : int(m)]), shape, steps, n)
        return frame, (steps, n)

    pattern = preset.provider.get_pattern(new)
    state = (jnp.zeros((2, k, len(pattern)), jnp.int32), jnp.int32(0))
    ours = lm.generate(step_fn, state, pattern, np.zeros((2, k, 0), np.int32), special_token=PAD,
                       step_returns="tokens").codes  # fmt: skip
    n = expected.shape[1]  # transformers stops once every example has an eos frame
    assert_same(np.asarray(ours)[..., :n], np.swapaxes(expected, 1, 2))
    assert len(np.unique(expected)) > 2


class ForceCodeZero(LogitsProcessor):
    """Codebook 0 of frame `at` is forced to 0 (the backbone's logits; transformers' own processor hook)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, input_ids, scores):
        if input_ids.ndim == 3 and input_ids.shape[1] == self.at:
            scores = torch.full_like(scores, -torch.inf)
            scores[:, 0] = 0.0
        return scores


@pytest.mark.parametrize("last_is_eos", [True, False])
def test_decode_cuts_the_audio_where_generate_does(last_is_eos):
    """K=2: `generate` stops after the frame whose codebook 0 (codebooks 0..K-2) is eos; its audio ends before
    the first frame whose K codebooks all are, so a last codebook that is not eos stays in the audio."""
    model = tiny_csm(2, seed=3)
    preset = presets.from_transformers(model.config)
    specials = list(range(8, VOCAB))  # codes only (Mimi's 8), so that the codec decodes the frames
    depth = list(range(1, VOCAB)) if last_is_eos else [0, *specials]  # codebook 1: always 0, or never
    options = dict(input_ids=torch.tensor([[1, 4, 5]]), max_new_tokens=6, do_sample=False, suppress_tokens=specials)
    options |= dict(logits_processor=LogitsProcessorList([ForceCodeZero(2)]), depth_decoder_suppress_tokens=depth)
    with torch.no_grad():
        frames = model.generate(**options)
        audio = model.generate(**options, output_audio=True)
    assert frames.shape[1] == 3 and (frames[0, 2, 0] == 0) and bool(frames[0, 2, 1] == 0) == last_is_eos
    codes, lengths = preset.decode(frames.numpy(), codebooks_last=True)
    assert int(lengths[0]) == (2 if last_is_eos else 3)
    with torch.no_grad():
        ours = model.codec_model.decode(torch.tensor(np.array(codes)[:1, :, : int(lengths[0])]))
    assert_same(ours.audio_values[0, 0].numpy(), audio[0].numpy())


def test_bad_inputs_name_their_argument():
    preset = presets.CSM(2, 10, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=9)
    with pytest.raises(ValueError, match=r"`input_ids`\[0\] has 1 audio placeholders but example 0 has 2 frames"):
        preset.frames(np.array([[1, 6, 7]]), np.zeros((1, 2, 2), int))
    with pytest.raises(ValueError, match=r"`codes` holds the code 9; codes must lie in \[0, 9\)"):
        preset.frames(np.array([[1, 6, 7]]), np.full((1, 2, 1), 9))
    with pytest.raises(ValueError, match=r"`codebook_pad_token_id`=10 is outside the codebook vocabulary"):
        presets.CSM(2, 10, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=10)
    with pytest.raises(ValueError, match=r"`frames` has shape \(1, 5, 2\).*pass `codebooks_last=True`"):
        preset.decode(np.zeros((1, 5, 2), int))
