"""`presets.Qwen3OmniTalker` against transformers' Qwen3-Omni talker and code predictor (tiny, built in code).

The talker's classes build tiny in transformers 5.24 given two fields its text config does not declare
(`shared_expert_intermediate_size`, `spatial_merge_size`); the thinker is not needed: its outputs (the talker's
prompt embeddings, `trailing_text_hidden`, `tts_pad_embed`) are random tensors of the right shapes.
"""

from __future__ import annotations

import typing as tp

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from helpers import assert_same
from transformers.models.qwen3_omni_moe.configuration_qwen3_omni_moe import (
    Qwen3OmniMoeConfig,
    Qwen3OmniMoeTalkerConfig,
)
from transformers.models.qwen3_omni_moe.modeling_qwen3_omni_moe import Qwen3OmniMoeTalkerForConditionalGeneration

from jax_patterns import lm, presets

G, CODES, VOCAB, EOS, PAD, HIDDEN = 3, 8, 1032, 1030, 1028, 16  # talker ids: 8 codes, then specials (last 1024)
SMALL = {"hidden_size": HIDDEN, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
         "num_key_value_heads": 2, "head_dim": 8}  # fmt: skip


def talker_config() -> Qwen3OmniMoeTalkerConfig:
    text = SMALL | {"vocab_size": VOCAB, "moe_intermediate_size": 16, "shared_expert_intermediate_size": 16,
                    "num_experts": 2, "num_experts_per_tok": 1, "max_position_embeddings": 64}  # fmt: skip
    return Qwen3OmniMoeTalkerConfig(
        text_config=text,
        code_predictor_config=SMALL | {"vocab_size": CODES, "num_code_groups": G, "max_position_embeddings": 16},
        num_code_groups=G,
        thinker_hidden_size=HIDDEN,
        **{"spatial_merge_size": 2},  # read by the talker's model, not a declared field of its config
        codec_eos_token_id=EOS,
        codec_pad_id=PAD,
        codec_bos_id=1029,
        codec_nothink_id=1024,
        codec_think_bos_id=1025,
        codec_think_eos_id=1026,
        accept_hidden_layer=0,
    )


def tiny_talker(seed: int) -> Qwen3OmniMoeTalkerForConditionalGeneration:
    torch.manual_seed(seed)
    model = Qwen3OmniMoeTalkerForConditionalGeneration(talker_config()).eval()
    with torch.no_grad():
        # transformers 5.24 leaves the talker's MoE experts (and router) as `torch.empty`: its `_init_weights`
        # knows the thinker's expert classes only. Initialize them as it initializes the thinker's.
        for module in model.model.modules():
            if type(module).__name__ in ("Qwen3OmniMoeTalkerTextExperts", "Qwen3OmniMoeTalkerTextTopKRouter"):
                for weight in module.parameters(recurse=False):
                    weight.normal_(0.0, model.config.text_config.initializer_range)
        # default init gives near-uniform logits: raise the weights' scale
        model.codec_head.weight.mul_(8.0)
        for head in model.code_predictor.lm_head:
            head.weight.mul_(8.0)
    return model


def test_from_transformers_reads_the_composite_config():
    composite = Qwen3OmniMoeConfig(talker_config=talker_config().to_dict(), enable_audio_output=True)
    expected = presets.Qwen3OmniTalker(G, VOCAB, CODES, codec_eos_token_id=EOS, codec_pad_id=PAD)
    assert presets.from_transformers(composite) == expected
    assert presets.from_transformers(composite.to_dict()) == expected


def tables(model) -> torch.Tensor:
    """The talker's codec table, then the code predictor's G - 1: the order of `Qwen3OmniTalker.offsets`."""
    predictor = model.code_predictor.get_input_embeddings()
    return torch.cat([model.get_input_embeddings().weight, *[table.weight for table in predictor]])


def test_greedy_generate_and_inputs_equal_transformers():
    """`lm.generate` on the preset's pattern, driving the talker and its code predictor through a host callback
    (`step_returns="tokens"`, EOS on group 0), equals the talker's own greedy `generate` frame for frame and
    length for length; and every input the talker is fed after the prompt is the sum of the frame's rows
    (`embedding_ids`) plus its text (`text_positions`)."""
    model = tiny_talker(seed=5)
    preset = presets.Qwen3OmniTalker(G, VOCAB, CODES, codec_eos_token_id=EOS, codec_pad_id=PAD)
    batch, prompt_len, text_len, new = 3, 4, 2, 7
    rng = torch.Generator().manual_seed(0)
    prompt = torch.randn(batch, prompt_len, HIDDEN, generator=rng)
    trailing = torch.randn(batch, text_len, HIDDEN, generator=rng)
    tts_pad = torch.randn(1, 1, HIDDEN, generator=rng).expand(batch, -1, -1)
    fed: list[torch.Tensor] = []
    hook = model.model.register_forward_pre_hook(
        lambda m, a, k: fed.append(k["inputs_embeds"].clone()), with_kwargs=True
    )
    try:
        with torch.no_grad():
            result: tp.Any = model.generate(
                inputs_embeds=prompt, attention_mask=torch.ones(batch, prompt_len, dtype=torch.long),
                trailing_text_hidden=trailing, tts_pad_embed=tts_pad, max_new_tokens=new, do_sample=False,
                eos_token_id=EOS, suppress_tokens=list(preset.suppress_tokens), pad_token_id=PAD,
                output_hidden_states=True, return_dict_in_generate=True,
            )  # fmt: skip
    finally:
        hook.remove()
    residual = [hidden[-1] for hidden in result.hidden_states if hidden[-1] is not None]
    theirs, their_lengths = preset.decode(torch.stack(residual, dim=1).numpy(), codebooks_last=True)  # N - 1 frames

    table = tables(model)
    text = np.asarray(preset.text_positions(new, np.full(batch, text_len)))

    def frame_inputs(frames: np.ndarray) -> torch.Tensor:
        """What the talker reads for each frame so far: its rows' sum, plus its text."""
        rows = torch.from_numpy(np.asarray(preset.embedding_ids(np.swapaxes(frames, 1, 2))).astype(np.int64))
        steps = frames.shape[-1]
        extra = torch.where(torch.from_numpy(text[:, :steps, None] >= 0),
                            trailing[:, np.clip(text[0, :steps], 0, text_len - 1)], tts_pad)  # fmt: skip
        with torch.no_grad():
            return table[rows].sum(dim=2) + extra

    expected = frame_inputs(torch.stack(residual, dim=-1).numpy()).numpy()  # [B, N - 1, H]
    assert len(fed) == new
    for step, embeds in enumerate(fed[1:]):  # the prompt first, then one frame a step
        assert_same(embeds.numpy(), expected[:, step : step + 1])

    def next_frame(frames: np.ndarray) -> np.ndarray:
        frames = frames.copy()  # a finished example is fed the special token (its frames no longer matter)
        frames[:, 1:] = np.where(frames[:, 1:] == PAD, 0, frames[:, 1:])
        with torch.no_grad():
            embeds = torch.cat([prompt, frame_inputs(frames)], dim=1) if frames.shape[-1] else prompt
            out = model(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
                        output_hidden_states=True)  # fmt: skip
            logits = out.logits[:, -1].clone()
            logits[:, list(preset.suppress_tokens)] = -torch.inf
            first = logits.argmax(-1, keepdim=True)
            hidden = out.hidden_states[0][-1][:, -1:]
            predicted = model.code_predictor.generate(
                inputs_embeds=torch.cat([hidden, model.get_input_embeddings()(first)], dim=1),
                max_new_tokens=G - 1, do_sample=False,
            )  # fmt: skip
        return torch.cat([first, predicted], dim=-1).numpy().astype(np.int32)

    def step_fn(state, tokens):  # the state is every step so far (the special step, then the frames)
        steps, n = state
        steps = jax.lax.dynamic_update_slice_in_dim(steps, tokens, n, axis=2)
        n = n + tokens.shape[-1]
        shape = jax.ShapeDtypeStruct((batch, G), jnp.int32)
        frame = jax.pure_callback(lambda s, m: next_frame(np.asarray(s)[:, :, 1 : int(m)]), shape, steps, n)
        return frame, (steps, n)

    pattern = preset.provider.get_pattern(new)
    state = (jnp.zeros((batch, G, len(pattern)), jnp.int32), jnp.int32(0))
    generated, lengths = lm.generate(step_fn, state, pattern, np.zeros((batch, G, 0), np.int32), special_token=PAD,
                                eos_token=EOS, step_returns="tokens")  # fmt: skip
    kept = np.arange(new)[None, None, :] < np.asarray(lengths)[:, None, None]
    ours = np.where(kept, np.asarray(generated), 0)
    assert_same(np.minimum(lengths, new - 1), their_lengths)
    assert_same(ours[..., : new - 1], theirs)
    assert 0 < int(np.min(lengths)) < new - 1 <= int(np.max(lengths))  # one example stops early, one does not
    assert len(np.unique(theirs)) > 3


def test_decode_and_bad_inputs():
    preset = presets.Qwen3OmniTalker(2, VOCAB, CODES, codec_eos_token_id=EOS)
    codes, lengths = preset.decode(
        np.array([[[1, 2], [3, 4], [5, 6]], [[7, 3], [EOS, 0], [1, 1]]]), codebooks_last=True
    )
    assert_same(lengths, [3, 1])
    assert_same(codes[1], [[7, 0, 0], [3, 0, 0]])
    assert EOS not in preset.suppress_tokens and set(preset.suppress_tokens) == set(range(8, VOCAB)) - {EOS}
    with pytest.raises(ValueError, match=r"`codec_eos_token_id`=5 must be a special id of the talker's vocabulary"):
        presets.Qwen3OmniTalker(2, VOCAB, CODES, codec_eos_token_id=5)
    with pytest.raises(ValueError, match=r"`frames` holds the code 8; codes must lie in \[0, 8\)"):
        preset.embedding_ids(np.array([1, 8]))
