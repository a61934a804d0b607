"""splitmix64's finaliser: its two spellings (a Python int, numpy uint64) are one function."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from botify.splitmix import GOLDEN, MASK64, mix64, mix64_array


def test_the_reference_stream_from_state_zero():
    # splitmix64.c (Vigna) seeded with 0: the first two outputs
    assert mix64(GOLDEN) == 0xE220A8397B1DCDAF
    assert mix64((2 * GOLDEN) & MASK64) == 0x6E789E6AA1B965F4


@given(st.lists(st.integers(0, MASK64), min_size=1, max_size=50))
def test_scalar_and_array_agree(values):
    mixed = mix64_array(np.array(values, dtype=np.uint64))
    assert mixed.dtype == np.uint64
    assert [int(v) for v in mixed] == [mix64(v) for v in values]
