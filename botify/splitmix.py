"""splitmix64's finaliser, the one mixing function behind every counter-based random stream:
a step's draws in the service (`botify.step`) and the simulator's draws (`sim.batch`).

Two spellings of the same function, from the same constants: `mix64` on a Python int (a step
draws one number at a time, in well under a microsecond) and `mix64_array` elementwise on numpy
uint64 (the simulator draws for thousands of sessions at once). A test checks they agree.
"""

from __future__ import annotations

import numpy as np

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / the golden ratio: splitmix64's stream increment
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB

_M1_U64, _M2_U64 = np.uint64(_M1), np.uint64(_M2)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix64(x: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit function of a 64-bit integer."""
    x = ((x ^ (x >> 30)) * _M1) & MASK64
    x = ((x ^ (x >> 27)) * _M2) & MASK64
    return x ^ (x >> 31)


def mix64_array(x: np.ndarray) -> np.ndarray:
    """`mix64` elementwise on uint64 (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> _S30)) * _M1_U64
        x = (x ^ (x >> _S27)) * _M2_U64
    return x ^ (x >> _S31)
