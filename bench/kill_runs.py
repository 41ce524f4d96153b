"""kill -9 a short training at random moments: is a bundle or checkpoint ever lost?

Each run starts `train.py --force` over an existing bundle, waits for its
first checkpoint (start-up before it holds no save), then sends SIGKILL after
a random delay, uniform over the rest of a whole run: every later epoch's
checkpoint swap, the evaluation, the bundle swap and the checkpoint's
removal. It then checks what the next command would find: the bundle loads
and verifies against its manifest (old or new, never missing or partial),
and a checkpoint, when there is one, reads and carries on with a real
`--resume`. Odd runs force the two-rename swap (FORECASTER_NO_EXCHANGE=1),
whose gap recovery must close. A run that ends before its kill re-measures
the rest of a run and does not count; runs go on until `--runs` were killed.

python -m bench.kill_runs                 # 20 kills; bench/out/kill_runs.json
python -m bench.kill_runs --runs 5 --seed 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.workflows.runs import checkpoint_dir_for

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FLAGS = [
    "--window", "10", "--units", "4", "--layers", "1", "--batch-size", "32",
    "--patience", "0", "--quiet",
]  # fmt: skip
EPOCHS = 10


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    work = OUT / "kill_runs"
    work.mkdir(parents=True, exist_ok=True)
    csv = _write_prices(work / "WALK.csv")
    out = work / "bundle"
    _train(csv, out, ["--force", "--epochs", "2"], check=True)
    rng = random.Random(args.seed)
    first = _one_run(0, csv, out, None)  # unkilled: measures the rest of a run
    rest = first["seconds"]
    print(f"from the first checkpoint to the end: {rest:.1f} s", flush=True)
    rows = []
    while sum(row["killed"] for row in rows) < args.runs:
        row = _one_run(len(rows), csv, out, rng.uniform(0, rest))
        rows.append(row)
        if not row["killed"]:
            rest = row["seconds"]
    failures = [row for row in rows if row["problem"]]
    summary = {
        "runs": len(rows),
        "killed": sum(row["killed"] for row in rows),
        "killed_in_a_swap": sum(row["leftovers"] > 0 for row in rows),
        "resumed": sum(bool(row.get("resumed")) for row in rows),
        "failures": len(failures),
    }
    (OUT / "kill_runs.json").write_text(
        json.dumps({"summary": summary, "rows": rows}, indent=2)
    )
    print(pd.DataFrame(rows).to_string(index=False))
    print(json.dumps(summary))
    return 1 if failures else 0


def _write_prices(path: Path) -> str:
    """A generated random walk (not market data), 400 business days."""
    rng = np.random.default_rng(6)
    values = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, size=400)))
    dates = pd.bdate_range("2020-01-01", periods=400, name="Date")
    pd.DataFrame({"Close": values}, index=dates).to_csv(path, date_format="%Y-%m-%d")
    return str(path)


def _train(csv, out, extra, env=None, check=False):
    done = subprocess.run(
        [sys.executable, "train.py", "--csv", csv, "--out", str(out), *FLAGS, *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
    )
    if check and done.returncode != 0:
        raise SystemExit(f"train.py failed: {done.stderr.strip()[-500:]}")
    return done


def _one_run(k: int, csv: str, out: Path, delay: float | None) -> dict:
    mode = "two-renames" if k % 2 else "exchange"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if mode == "two-renames":
        env["FORECASTER_NO_EXCHANGE"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "train.py", "--csv", csv, "--out", str(out), *FLAGS]
        + ["--force", "--epochs", str(EPOCHS)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = checkpoint_dir_for(out)
    while not checkpoint.exists() and proc.poll() is None:
        time.sleep(0.02)  # a benchmark may poll; the tests stop saves by fault points
    started = time.perf_counter()
    try:
        proc.wait(timeout=delay)
        killed = False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = True
    row = {
        "run": k,
        "mode": mode,
        "kill_after_first_checkpoint_s": None if delay is None else round(delay, 3),
        "killed": killed,
        "seconds": round(time.perf_counter() - started, 2),
    }
    row.update(_check(csv, out, env))
    print(json.dumps(row), flush=True)
    return row


def _check(csv: str, out: Path, env: dict) -> dict:
    """What the next command finds: a verified bundle; a checkpoint that resumes."""
    from forecaster.io import discard_directory, leftovers
    from forecaster.store.bundle import load_bundle

    checkpoint = checkpoint_dir_for(out)
    found = {
        "leftovers": len(leftovers(out)) + len(leftovers(checkpoint)),
        "problem": "",
    }
    try:
        bundle = load_bundle(out)  # recovers a killed swap first, then verifies
        found["bundle_epochs"] = bundle.metadata["training"]["epochs_run"]
    except Exception as err:  # any failure here is what the benchmark looks for
        found["problem"] = f"bundle: {err}"
        return found
    epochs = _checkpoint_epochs(checkpoint)
    found["checkpoint_epochs"] = epochs
    if isinstance(epochs, str):
        found["problem"] = f"checkpoint: {epochs}"
    elif epochs:
        resumed = _train(csv, out, ["--resume", "--epochs", str(EPOCHS)], env=env)
        found["resumed"] = resumed.returncode == 0
        if resumed.returncode != 0:
            found["problem"] = f"resume: {resumed.stderr.strip()[-300:]}"
    discard_directory(checkpoint)  # the next run waits for a fresh one
    return found


def _checkpoint_epochs(checkpoint: Path):
    """Epochs in a checkpoint (0 when there is none), or what is wrong with it."""
    from forecaster.io import recover_if_free
    from forecaster.train.checkpoint import CheckpointState

    recover_if_free(checkpoint, "checkpoint")
    try:
        state = CheckpointState.read(checkpoint)
        if state is None:
            return "state.json missing" if checkpoint.exists() else 0
        with zipfile.ZipFile(state.model_path) as archive:
            if archive.testzip() is not None:
                return "last.keras fails its checksum"
        with np.load(state.best_weights_path) as weights:
            assert len(weights.files) > 0
        return state.epochs_done
    except Exception as err:  # a damaged checkpoint, in any form
        return f"{type(err).__name__}: {err}"


if __name__ == "__main__":
    sys.exit(main())
