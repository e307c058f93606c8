"""torch_compat: the PyTorch side of jax_patterns (imports torch; jax_patterns never does).

- the reference path: audiocraft's scatter-index algorithm in torch (`reference`);
- `from_audiocraft` / `to_audiocraft`: convert pattern objects both ways;
- `to_torch` / `to_jax`: zero-copy tensor exchange through DLPack;
- `compare` / `format_table`: run both frameworks and report the first mismatch;
- `lm`: audiocraft's compute_predictions, cross entropy and generation loop in torch.
"""

from torch_compat import _lm as lm
from torch_compat import _reference as reference
from torch_compat._compare import CheckResult as CheckResult
from torch_compat._compare import compare as compare
from torch_compat._compare import first_mismatch as first_mismatch
from torch_compat._compare import format_table as format_table
from torch_compat._convert import AudiocraftProvider as AudiocraftProvider
from torch_compat._convert import from_audiocraft as from_audiocraft
from torch_compat._convert import load_audiocraft_file as load_audiocraft_file
from torch_compat._convert import to_audiocraft as to_audiocraft
from torch_compat._dlpack import to_jax as to_jax
from torch_compat._dlpack import to_torch as to_torch

__all__ = (
    "AudiocraftProvider",
    "CheckResult",
    "compare",
    "first_mismatch",
    "format_table",
    "from_audiocraft",
    "lm",
    "load_audiocraft_file",
    "reference",
    "to_audiocraft",
    "to_jax",
    "to_torch",
)
