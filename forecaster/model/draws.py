"""The uniform draws behind sampled paths: a Latin hypercube turned by a cosine basis.

Every path needs one uniform per step. Plain random draws need about 1,000
paths for the 95% band of day 30 to settle; these need about half as many
for the same error (BENCHMARKS.md, "Distribution forecasts"):

1. A Latin hypercube over the steps: each step's draws, over the paths, fall
   one in each of `samples` equal strata (a random permutation per step).
2. Through the normal quantile function, then rotated by the orthonormal
   DCT-II basis, whose first vector is constant: the first stratified
   coordinate sets the SUM of a path's normal shocks, which is what a band
   far out mostly depends on, and the next ones its slow shape. A rotation
   of independent standard normals is independent standard normals, so each
   path's draws are still independent uniforms (back through the normal
   CDF): every path has exactly the law of plain draws, only the paths are
   spread more evenly.
"""

from __future__ import annotations

import numpy as np
from scipy import special

UNIFORM_EDGE = 1e-12  # draws are kept this far inside (0, 1): finite normal/t tails


def path_uniforms(seed: int, samples: int, steps: int) -> np.ndarray:
    """(samples, steps) uniforms in (0, 1) from numpy.random.default_rng(seed).

    Row i: path i's draws, step by step; each row is a set of independent
    uniforms, and the rows together are stratified as the module says. The
    same seed gives the same draws.
    """
    rng = np.random.default_rng(seed)
    strata = rng.permuted(np.tile(np.arange(samples), (steps, 1)), axis=1).T
    hypercube = (strata + rng.random((samples, steps))) / samples
    hypercube = np.clip(hypercube, UNIFORM_EDGE, 1 - UNIFORM_EDGE)
    shocks = special.ndtri(hypercube) @ cosine_basis(steps).T
    return np.clip(special.ndtr(shocks), UNIFORM_EDGE, 1 - UNIFORM_EDGE)


def cosine_basis(size: int) -> np.ndarray:
    """The orthonormal DCT-II basis (size, size): column k is the k-th cosine.

    Column 0 is constant, 1 / sqrt(size).
    """
    days = np.arange(size)[:, None] + 0.5
    basis = np.sqrt(2.0 / size) * np.cos(np.pi * days * np.arange(size) / size)
    basis[:, 0] = np.sqrt(1.0 / size)
    return basis
