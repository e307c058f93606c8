"""Writes tests/goldens/orpheus_0_1_0.npz from Orpheus's released decoder (`orpheus-speech` 0.1.0 on PyPI).

Runs `orpheus_tts/decoder.py` of the sdist, loaded by file path: `turn_token_into_id`, `tokens_decoder` (the
streaming loop, windows of four frames) and `convert_to_audio` (the seven tokens of a frame back to SNAC's three
levels). What those functions never need is stubbed: the `snac` import (the module loads SNAC 24 kHz from the
Hugging Face hub at import) is a recorder whose `decode` keeps the levels it is handed and returns silence, and
`snac_device` is set to "cpu" (the module hard-codes "cuda"). The package's engine (vllm) is not loaded.

Stored, for random codes (1-4095: the decoder drops code 0), token ids laid out as Orpheus's vocabulary has
them (`128266 + position * 4096 + code`): the levels `convert_to_audio` reads from whole streams, the windows
`tokens_decoder` hands SNAC, and two quirks: a stream holding a code 0 (dropped) and a frame holding 4096
(accepted). The source itself is never committed.

Usage:
  python tools/make_orpheus_goldens.py                  # downloads the sdist with pip
  python tools/make_orpheus_goldens.py --source path/to/orpheus_tts/decoder.py
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
import tempfile
import types

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from peer_sdist import fetch_sdist_files, load_module  # noqa: E402

VERSION = "0.1.0"
OUT = pathlib.Path(__file__).resolve().parents[1] / "tests" / "goldens" / "orpheus_0_1_0.npz"
OFFSET, CARD, FRAME = 128266, 4096, 7


class Recorder:
    """Stands in for `SNAC.from_pretrained(...)`: `decode(codes)` keeps the three levels it gets."""

    def __init__(self) -> None:
        self.calls: list[list[np.ndarray]] = []

    def eval(self) -> Recorder:
        return self

    def to(self, device: str) -> Recorder:
        return self

    def decode(self, codes):
        import torch

        self.calls.append([c.cpu().numpy().astype(np.int64) for c in codes])
        return torch.zeros((1, 1, 4096))


def load_decoder(source: pathlib.Path) -> tuple[types.ModuleType, Recorder]:
    recorder = Recorder()
    snac = types.ModuleType("snac")
    snac.SNAC = types.SimpleNamespace(from_pretrained=lambda name: recorder)  # type: ignore[attr-defined]
    module = load_module("orpheus_decoder", source, {"snac": snac})
    module.__dict__["snac_device"] = "cpu"  # the module hard-codes "cuda"
    return module, recorder


def stream(codes: np.ndarray) -> np.ndarray:
    """Codes `[F, 7]` (a frame's seven positions) as Orpheus's token ids `[7F]`, as its vocabulary lays them out."""
    return (OFFSET + np.arange(FRAME) * CARD + codes).reshape(-1)


def token_strings(ids: np.ndarray) -> list[str]:
    return [f"<custom_token_{int(i) - 128256}>" for i in ids]  # Llama 3's <custom_token_N> is id 128256 + N


def windows(module, recorder: Recorder, ids: np.ndarray) -> list[list[np.ndarray]]:
    """The levels `tokens_decoder` hands SNAC while the stream `ids` arrives, one token at a time."""
    recorder.calls.clear()

    async def run():
        async def tokens():
            for text in token_strings(ids):
                yield text

        return [chunk async for chunk in module.tokens_decoder(tokens())]

    asyncio.run(run())
    return list(recorder.calls)


def whole(module, recorder: Recorder, ids: np.ndarray) -> list[np.ndarray]:
    """The levels `convert_to_audio` reads from the whole stream (codes from `turn_token_into_id`)."""
    recorder.calls.clear()
    codes = [module.turn_token_into_id(text, i) for i, text in enumerate(token_strings(ids))]
    assert module.convert_to_audio(codes, len(codes)) is not None
    (levels,) = recorder.calls
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=pathlib.Path, help="orpheus_tts/decoder.py (else the sdist is downloaded)")
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = "orpheus_tts/decoder.py"
        source = args.source or fetch_sdist_files("orpheus-speech", VERSION, (path,), pathlib.Path(tmp)) / path
        module, recorder = load_decoder(source)
    rng = np.random.default_rng(2025)
    ids = np.stack([stream(rng.integers(1, CARD, (6, FRAME))) for _ in range(2)])  # [2, 42]: 6 frames each
    store: dict[str, np.ndarray] = {"ids": ids}
    levels = [whole(module, recorder, row) for row in ids]
    for level in range(3):
        store[f"levels_{level}"] = np.concatenate([row[level] for row in levels])  # [2, T * rate]
        store[f"windows_{level}"] = np.stack(
            [np.concatenate([w[level] for w in windows(module, recorder, row)]) for row in ids]
        )  # [2, windows, 4 * rate]
    zero = stream(np.where(np.arange(FRAME * 6).reshape(6, FRAME) == 10, 0, rng.integers(1, CARD, (6, FRAME))))
    zero_windows = windows(module, recorder, zero)
    store["zero_ids"] = zero
    store["zero_windows"] = np.asarray(len(zero_windows))  # how many windows reach SNAC once a code 0 is dropped
    high = np.array([5, 6, CARD, 7, 8, 9, 10])  # a frame whose position 2 holds 4096
    recorder.calls.clear()
    store["high_accepted"] = np.asarray(module.convert_to_audio(list(high), FRAME) is not None)
    store["high_levels_2"] = recorder.calls[0][2] if recorder.calls else np.zeros((1, 0), np.int64)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **store)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {', '.join(sorted(store))}")


if __name__ == "__main__":
    main()
