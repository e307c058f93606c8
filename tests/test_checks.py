"""The shared checks of `_checks.py` on their own: each kind of argument has one checker."""

from __future__ import annotations

import numpy as np
import pytest

from jax_patterns._checks import check_codes


@pytest.mark.parametrize(
    ("codes", "error", "match"),
    [
        (None, TypeError, "is None"),
        (np.zeros((1, 2, 3), np.float32), TypeError, "integer codes"),
        (np.zeros((1, 2, 3), bool), TypeError, "integer codes"),
        (np.zeros((1, 3, 3), np.int32), ValueError, "K=2"),
        (np.zeros((2, 3), np.int32), ValueError, "shape"),
        (np.full((1, 2, 3), -1), ValueError, "the code -1"),
        (np.full((1, 2, 3), 8), ValueError, r"\[0, 8\)"),
        (np.full((1, 2, 3), 2**32 + 5, np.int64), ValueError, "4294967301"),  # wraps to 5 (forbidden) as int32
        (np.full((1, 2, 3), 2**64 - 1, np.uint64), ValueError, "18446744073709551615"),
        (np.full((1, 2, 3), 5), ValueError, "special id"),
    ],
)
def test_check_codes_refuses_and_names_the_argument(codes, error, match):
    with pytest.raises(error, match=match) as caught:
        check_codes(codes, "prompt", n_q=2, below=8, forbid=(5,))
    assert "`prompt`" in str(caught.value)


def test_check_codes_keeps_host_codes_in_their_dtype_and_bounds_by_int32_without_below():
    codes = np.arange(6, dtype=np.int64).reshape(1, 2, 3)
    assert check_codes(codes, "codes", n_q=2, below=None).dtype == np.int64
    with pytest.raises(ValueError, match="2147483648"):
        check_codes(np.full((1, 2, 1), 2**31, np.int64), "codes", n_q=2, below=None)
    assert check_codes(np.zeros((2, 0), np.int32), "prompt", n_q=2, below=4, ndim=2).shape == (2, 0)
