"""Start-up of the forecasting command beside a reference revision, side by side.

Times `predict.py --help` (the command's imports and argument parsing) and
`predict.py` end to end (NumPy engine, 5 days, 100 sampled paths) in this
checkout and in a git worktree of `--reference`, alternating, on one small
bundle trained here with the current code (the bundle format is the same in
both). Prints the median of each and the ratio current / reference.

    python -m bench.startup --reference 6d25a36 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SMALL = ["--epochs", "1", "--units", "8", "--layers", "1", "--window", "30"]


def reference_checkout(rev: str) -> Path:
    """A detached worktree of `rev` under bench/out (made once)."""
    path = OUT / f"reference-{rev}"
    if not path.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), rev],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return path


def small_bundle() -> Path:
    """One small bundle trained on the sample data with the current code."""
    bundle = OUT / "startup-bundle"
    if not (bundle / "manifest.json").exists():
        command = [sys.executable, "train.py", *SMALL, "--out", str(bundle)]
        subprocess.run([*command, "--force", "--quiet"], cwd=ROOT, check=True)
    return bundle


def seconds(command: list[str], cwd: Path) -> float:
    """Wall time of one run of `command` in `cwd` (it must exit 0)."""
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", default="6d25a36", help="git revision to compare")
    p.add_argument("--rounds", type=int, default=5, help="alternating pairs")
    args = p.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    checkouts = {"reference": reference_checkout(args.reference), "current": ROOT}
    bundle = small_bundle()
    predict = [sys.executable, "predict.py", "--model", str(bundle)]
    runs = {
        "predict.py --help": [*predict, "--help"],
        "predict.py, 5 days, 100 paths": [
            *predict, "--days", "5", "--samples", "100", "--out", str(OUT / "startup")
        ],
    }  # fmt: skip
    print(f"reference {args.reference}, {args.rounds} alternating rounds, medians")
    print(f"{'run':32s} {'reference':>10s} {'current':>10s} {'ratio':>7s}")
    for name, command in runs.items():
        times = {which: [] for which in checkouts}
        for _ in range(args.rounds):
            for which, cwd in checkouts.items():
                times[which].append(seconds(command, cwd))
        ref, cur = (statistics.median(times[w]) for w in ("reference", "current"))
        print(f"{name:32s} {ref:9.2f}s {cur:9.2f}s {cur / ref:7.2f}")


if __name__ == "__main__":
    main()
