"""Speed benchmark, section 4: forecasting scripts end to end, and where time goes.

Wall time from process start to PNG written of `bench/tutorial_predict.py`
against `predict.py` (NumPy engine, and `--engine keras`) on the benchmark's
own bundle, then `-X importtime` and cProfile listings of `predict.py`. Run
through `python -m bench.speed`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.speed_common import FORECAST_DAYS, OUT, ROOT, Row, Sizes, log, median, timed


def script_commands(bundle: Path) -> dict[str, tuple[list[str], Path]]:
    """The three forecasting scripts, each with the PNG it must write."""
    py = sys.executable
    tutorial_png = OUT / "tutorial-forecast.png"
    predict = [py, "predict.py", "--model", str(bundle), "--days", str(FORECAST_DAYS)]
    return {
        "tutorial": (
            [
                py,
                "bench/tutorial_predict.py",
                "--model",
                str(OUT / "tutorial-model.keras"),
                "--out",
                str(tutorial_png),
            ],
            tutorial_png,
        ),
        "numpy": (
            predict + ["--out", str(OUT / "predict-numpy")],
            OUT / "predict-numpy" / "forecast.png",
        ),
        "keras": (
            predict + ["--engine", "keras", "--out", str(OUT / "predict-keras")],
            OUT / "predict-keras" / "forecast.png",
        ),
    }


def run_script(command: list[str], png: Path) -> float:
    """Wall seconds from process start to exit; fails unless the PNG was written."""
    png.unlink(missing_ok=True)
    elapsed, done = timed(
        subprocess.run, command, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0 or not png.exists():
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def bench_scripts(sizes: Sizes, results: dict, bundle: Path) -> None:
    commands = script_commands(bundle)
    seconds = {name: [] for name in commands}
    for rep in range(sizes.predict_warmups + sizes.script_reps):
        log(f"scripts round {rep + 1}")
        for name, (command, png) in commands.items():  # interleaved: fair under load
            elapsed = run_script(command, png)
            if rep >= sizes.predict_warmups:
                seconds[name].append(elapsed)
    results["scripts"] = {
        "seconds": seconds,
        "commands": {k: " ".join(c[1:]) for k, (c, _) in commands.items()},
        "profile": profile_predict(commands),
    }


def script_rows(scripts: dict) -> list[Row]:
    seconds = scripts["seconds"]
    section = "4 script end to end"
    ref = median(seconds["tutorial"])
    rows = [Row(section, "tutorial_predict.py (TF, per-day predict)", ref, "s")]
    for name, what, limit in (
        ("numpy", "predict.py (default: NumPy engine)", 0.25),
        ("keras", "predict.py --engine keras", 0.5),
    ):
        value = median(seconds[name])
        rows.append(
            Row(
                section,
                what,
                value,
                "s",
                f"{value / ref:.2f}x the time",
                f"<= {limit}x",
                value / ref <= limit,
            )
        )
    return rows


def profile_predict(commands: dict) -> dict:
    """Where predict.py's time goes: -X importtime totals and a cProfile listing."""
    profile = {}
    for name in ("numpy", "keras"):
        command, _ = commands[name]
        done = subprocess.run(
            [command[0], "-X", "importtime", *command[1:]],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        profile[f"imports_{name}"] = top_imports(done.stderr)
    for name in ("numpy", "keras"):
        stats_file = OUT / f"predict-{name}.prof"
        command, _ = commands[name]
        subprocess.run(
            [command[0], "-m", "cProfile", "-o", str(stats_file), *command[1:]],
            cwd=ROOT,
            capture_output=True,
        )
        profile[f"cprofile_{name}"] = top_functions(stats_file)
    return profile


def top_imports(stderr: str, count: int = 8) -> list[tuple[str, float]]:
    """Top-level imports by cumulative seconds, from `python -X importtime` output."""
    found = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if not name.startswith("  "):  # one leading space: imported at top level
            found.append((name.strip(), int(cumulative) / 1e6))
    return sorted(found, key=lambda item: -item[1])[:count]


def top_functions(stats_file: Path, count: int = 12) -> list[tuple[str, float]]:
    """Functions by cumulative seconds from a cProfile dump."""
    import pstats

    stats = pstats.Stats(str(stats_file))
    rows = [
        (f"{Path(file).parent.name}/{Path(file).name}:{line}({func})", cumulative)
        for (file, line, func), (_, _, _, cumulative, _) in stats.stats.items()
        if not file.startswith(("<frozen", "~"))  # import machinery, builtins
    ]
    return sorted(rows, key=lambda item: -item[1])[:count]
