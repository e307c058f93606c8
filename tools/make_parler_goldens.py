"""Writes tests/goldens/parler_tts_0_2_3.npz from Parler-TTS's released code (`parler_tts` 0.2.3 on PyPI).

`parler_tts/modeling_parler_tts.py` imports transformers internals of its own era, so the functions the goldens
need are compiled from their own source in the sdist (by name, with `tools/peer_sdist.load_functions`), without
running the rest of the file: `build_delay_pattern_mask`, `apply_delay_pattern_mask`, `shift_tokens_right`; the
training script's `postprocess_dataset` (nested in its `main`, given the names it closes over: `bos_labels`,
`num_codebooks`, the bos and eos ids) and the collator's padding of labels (`pad_sequence(..., -100)`, copied
as the one line it is); and the revert at the end of `ParlerTTSForConditionalGeneration.generate` (its
statements from `output_ids = self.decoder.apply_delay_pattern_mask` to the `reshape`, run with a `self` whose
decoder is the module's own `build_delay_pattern_mask`). The source itself is never committed.

Usage:
  python tools/make_parler_goldens.py               # downloads the sdist with pip
  python tools/make_parler_goldens.py --source path/to/parler_tts-0.2.3
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import types
import typing as tp

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from peer_sdist import fetch_sdist_files, load_functions, load_statements  # noqa: E402

VERSION = "0.2.3"
OUT = pathlib.Path(__file__).resolve().parents[1] / "tests" / "goldens" / "parler_tts_0_2_3.npz"
MODELING = "parler_tts/modeling_parler_tts.py"
TRAINING = "training/run_parler_tts_training.py"
BOS, EOS, PAD, CARD = 1025, 1024, 1024, 1024  # Parler-TTS Mini v1 over DAC 44 kHz
CASES = [
    (9, [12, 8, 10]),
    (4, [3, 3]),
    (9, [9]),
    (2, [6, 0, 4]),
    (9, [5, 2, 7]),
]  # (K, frames per example); the last is shorter than 2K - 1 steps: parler_tts leaves it undelayed


def load(root: pathlib.Path) -> dict:
    namespace: dict = {"torch": torch}
    load_functions(root / MODELING, ("build_delay_pattern_mask", "apply_delay_pattern_mask", "shift_tokens_right"),
                   namespace)  # fmt: skip
    namespace["revert"] = load_statements(
        root / MODELING, "output_ids = self.decoder.apply_delay_pattern_mask", "output_ids = output_ids[mask].reshape"
    )
    namespace["training"] = root / TRAINING
    return namespace


def labels(namespace: dict, codes: list[np.ndarray], k: int) -> torch.Tensor:
    """The training labels of one batch: `postprocess_dataset` per example, then the collator's padding."""
    closure = {
        "torch": torch,
        "num_codebooks": k,
        "audio_encoder_bos_token_id": BOS,
        "audio_encoder_eos_token_id": EOS,
        "bos_labels": torch.ones((1, k, 1)) * BOS,
        "build_delay_pattern_mask": namespace["build_delay_pattern_mask"],
    }
    load_functions(namespace["training"], ("postprocess_dataset",), closure)
    stored = [closure["postprocess_dataset"](c.tolist())["labels"].tolist() for c in codes]  # the dataset's lists
    rows = [torch.tensor(row).transpose(0, 1) for row in stored]  # the collator's lines
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=-100)  # the collator's line


def generated(namespace: dict, codes: np.ndarray, k: int, ends: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """Ids as `generate` leaves them `[B * K, S]`: the codes, each example's eos from its end on, the pattern's
    bos and pad (`apply_delay_pattern_mask` of the mask built at the start of generation)."""
    batch, _, frames = codes.shape
    steps = frames + k
    start = torch.full((batch * k, 1), BOS)
    _, mask = namespace["build_delay_pattern_mask"](start, BOS, PAD, steps, k)
    raw = torch.full((batch, k, steps), 7)  # what a model wrote where the pattern has no code
    for q in range(k):
        written = np.where(np.arange(frames) >= ends[:, None], EOS, codes[:, q])
        raw[:, q, 1 + q : 1 + q + frames] = torch.from_numpy(written)
    return namespace["apply_delay_pattern_mask"](raw.reshape(batch * k, steps), mask).numpy(), start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=pathlib.Path, help="the extracted sdist's folder (else downloaded)")
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.source or fetch_sdist_files("parler_tts", VERSION, (MODELING, TRAINING), pathlib.Path(tmp))
        namespace = load(root)
        rng = np.random.default_rng(23)
        store: dict[str, np.ndarray] = {}
        build = namespace["build_delay_pattern_mask"]
        for case, (k, frames) in enumerate(CASES):
            lengths = np.asarray(frames)
            codes = rng.integers(0, CARD, (len(frames), k, max(frames)))
            bos = np.full((len(frames), k, 1), BOS)
            ids = torch.from_numpy(np.concatenate([bos, codes], -1).reshape(-1, max(frames) + 1))
            inputs, mask = build(ids, BOS, PAD, max(frames) + k, k)
            batch_labels = labels(namespace, [codes[b, :, :n] for b, n in enumerate(frames)], k)
            shifted = namespace["shift_tokens_right"](batch_labels, PAD, BOS).transpose(1, 2)
            ends = rng.integers(0, max(frames) + 1, len(frames))
            output_ids, start = generated(namespace, codes, k, ends)
            scope: dict[str, tp.Any] = {"self": types.SimpleNamespace(decoder=types.SimpleNamespace(
                build_delay_pattern_mask=lambda i, bos_token_id, pad_token_id, max_length, k=k, build=build: build(
                    i, bos_token_id, pad_token_id, max_length, k),
                apply_delay_pattern_mask=namespace["apply_delay_pattern_mask"], num_codebooks=k)),
                "generation_config": types.SimpleNamespace(bos_token_id=BOS, pad_token_id=PAD),
                "model_kwargs": {"decoder_delay_pattern_mask": build(start, BOS, PAD, output_ids.shape[1], k)[1]},
                "output_ids": torch.from_numpy(output_ids), "input_ids": start, "batch_size": len(frames)}  # fmt: skip
            exec(namespace["revert"], scope)  # noqa: S102 - the peer's own statements
            store |= {
                f"{case}_codes": codes,
                f"{case}_lengths": lengths,
                f"{case}_mask": mask.numpy(),
                f"{case}_inputs": inputs.numpy(),
                f"{case}_labels": batch_labels.numpy(),
                f"{case}_decoder_input_ids": shifted.numpy(),
                f"{case}_ends": ends,
                f"{case}_generated": output_ids,
                f"{case}_reverted": scope["output_ids"].numpy(),
            }
        short = build(torch.full((2, 1), BOS), BOS, PAD, 2, 2)  # max_length < 2K - 1: returned undelayed
        store["short_inputs"], store["short_mask"] = short[0].numpy(), short[1].numpy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **store)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {len(CASES)} cases")


if __name__ == "__main__":
    main()
