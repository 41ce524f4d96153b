"""Fewer sampled paths for the same error? The draws of model.draws against variants.

Day 30 of a random walk of 30 Student-t(4) moves, each move the t quantile
of one uniform draw, as the sampler turns draws into moves. For each way of
drawing the uniforms and each number of paths: the RMS error, over
`--seeds` seeds, of the 2.5/10/50/90/97.5% quantiles against reference
quantiles from 2,000,000 plain paths, in units of day 30's sd. Plain draws
of 1,000 paths are the error to match (BENCHMARKS.md, "Distribution
forecasts").

    python -m bench.draw_variants --seeds 300
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import special, stats
from scipy.stats import qmc

from forecaster.model.draws import UNIFORM_EDGE, cosine_basis, path_uniforms

STEPS, DF = 30, 4
LEVELS = np.array([0.025, 0.1, 0.5, 0.9, 0.975])


def day_30(uniforms: np.ndarray) -> np.ndarray:
    """The walk's value after STEPS t(DF) moves, one per uniform: (paths,)."""
    return stats.t.ppf(uniforms, DF).sum(axis=1)


def plain(seed: int, paths: int) -> np.ndarray:
    return np.random.default_rng(seed).random((paths, STEPS))


def hypercube_dct(seed: int, paths: int) -> np.ndarray:
    return path_uniforms(seed, paths, STEPS)


def hypercube_only(seed: int, paths: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    strata = rng.permuted(np.tile(np.arange(paths), (STEPS, 1)), axis=1).T
    return (strata + rng.random((paths, STEPS))) / paths


def sobol_dct(seed: int, paths: int) -> np.ndarray:
    sobol = qmc.Sobol(STEPS, scramble=True, seed=np.random.default_rng(seed))
    points = np.clip(
        sobol.random_base2(int(np.log2(paths))), UNIFORM_EDGE, 1 - UNIFORM_EDGE
    )
    shocks = special.ndtri(points) @ cosine_basis(STEPS).T
    return np.clip(special.ndtr(shocks), UNIFORM_EDGE, 1 - UNIFORM_EDGE)


def antithetic_dct(seed: int, paths: int) -> np.ndarray:
    half = path_uniforms(seed, paths // 2, STEPS)
    return np.concatenate([half, 1 - half])


VARIANTS = [
    ("plain (the target)", plain, 1000),
    ("hypercube + DCT (the default)", hypercube_dct, 512),
    ("hypercube + DCT", hypercube_dct, 256),
    ("Sobol + DCT", sobol_dct, 512),
    ("Sobol + DCT", sobol_dct, 256),
    ("Sobol + DCT", sobol_dct, 128),
    ("antithetic hypercube + DCT", antithetic_dct, 256),
    ("hypercube, no DCT", hypercube_only, 512),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300, help="seeds per variant")
    args = parser.parse_args()
    rng = np.random.default_rng(123)
    reference = np.quantile(
        np.concatenate([day_30(rng.random((200_000, STEPS))) for _ in range(10)]),
        LEVELS,
    )
    sd = np.sqrt(STEPS * DF / (DF - 2))
    print(f"{'draws':32s} {'paths':>6s}" + "".join(f"{p:>8.3f}" for p in LEVELS))
    for name, draw, paths in VARIANTS:
        errors = np.array(
            [
                np.quantile(day_30(draw(seed, paths)), LEVELS) - reference
                for seed in range(args.seeds)
            ]
        )
        rms = np.sqrt((errors**2).mean(axis=0)) / sd
        print(f"{name:32s} {paths:6d}" + "".join(f"{r:8.3f}" for r in rms))


if __name__ == "__main__":
    main()
