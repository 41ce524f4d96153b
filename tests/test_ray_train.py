"""Ray Train's global model, the parts that need no cluster: shards and the refusals.

The runs on a two-node cluster are in tests/test_ray_train_cluster.py (slow).
"""

from __future__ import annotations

import _socket
import socket
from pathlib import Path

import pytest
from conftest import make_prices, tiny_settings

import forecaster as fc
from forecaster.cli import main as cli
from forecaster.data.frames import panel_from_pandas
from forecaster.errors import ForecasterError
from forecaster.evaluate.backtest import walk_forward
from forecaster.prep.panel import prepare_panel

pytest.importorskip("ray", reason="Ray is not installed: pip install .[ray]")
from forecaster.distributed.train import shard_parts  # noqa: E402
from forecaster.distributed.tune import run_search  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PANEL = [str(ROOT / "data" / f"{name}.csv") for name in ("AAPL", "GOOG", "MSFT")]


def test_a_single_series_is_refused_before_ray_starts():
    model = fc.Forecaster(ray_workers=2, window=10, units=4, epochs=1)
    with pytest.raises(ForecasterError, match="ray_workers trains one global model"):
        model.fit(make_prices(200))


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_shards_cover_every_window_once_in_equal_runs(workers):
    panel = panel_from_pandas(
        {f"S{i}": make_prices(150 + 40 * i, seed=i) for i in range(3)}
    )
    prep = fc.Forecaster(window=10).settings.prep
    parts = list(prepare_panel(panel, prep).parts.values())
    shards = shard_parts(parts, workers)
    for which in ("fit_targets", "val_targets"):
        total = sum(
            getattr(p.split, which)[1] - getattr(p.split, which)[0] for p in parts
        )
        sizes = [
            sum(getattr(p.split, which)[1] - getattr(p.split, which)[0] for p in shard)
            for shard in shards
        ]
        assert sum(sizes) == total
        assert max(sizes) - min(sizes) <= 1
        covered = sorted(
            (id(p.scaled), t)
            for shard in shards
            for p in shard
            for t in range(*getattr(p.split, which))
        )
        assert len(covered) == len(set(covered)) == total


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "--per-series", "--ray-workers", "2"],
            "--ray-workers trains one global model over the panel and --per-series "
            "one model per series: choose one. Received: --ray-workers 2 --per-series",
        ),
        (
            ["backtest", "3", "--ray-workers", "2"],
            "--ray-workers trains one bundle and a backtest retrains a model per fold "
            "in this process: leave out --ray-workers. Received: --ray-workers 2 with "
            "a backtest of 3 folds",
        ),
        (
            ["tune", "--ray-workers", "2"],
            "--ray-workers trains one global model and tune trains many small ones, "
            "one Ray task each: leave out --ray-workers. Received: --ray-workers 2",
        ),
        (
            ["train", "--ray-address", "127.0.0.1:6379"],
            "--ray-address says where --ray-workers or --per-series run: add one of "
            "them, or leave out --ray-address. Received: --ray-address 127.0.0.1:6379",
        ),
    ],
)
def test_the_command_line_refuses_ray_workers_beside_many_models(
    argv, message, tmp_path, capsys
):
    argv = [*argv, "--csv", *PANEL, "--out", str(tmp_path / "out")]
    assert cli.run(cli.main, argv) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {message}"]
    assert not (tmp_path / "out").exists()


def test_an_unreachable_ray_address_is_one_line(tmp_path, capsys, monkeypatch):
    """Nothing listens on port 1: refused at once, before any data is read."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)

    def loopback_only(sock, address, *args, **kwargs):  # conftest blocks the rest
        assert address[0] == "127.0.0.1", address
        return _socket.socket.connect(sock, address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    argv = ["train", "--csv", *PANEL, "--ray-workers", "2"]
    argv += ["--ray-address", "127.0.0.1:1", "--out", str(tmp_path / "out")]
    assert cli.run(cli.main, argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "error: Could not join the Ray cluster at '127.0.0.1:1' (cannot reach port 1 "
        "of 127.0.0.1: ConnectionRefusedError"
    )
    assert not (tmp_path / "out").exists()


def test_the_api_refuses_ray_workers_where_it_trains_many_models(tmp_path):
    settings = tiny_settings()
    settings.train.ray_workers = 2
    panel = panel_from_pandas({"A": make_prices(seed=1), "B": make_prices(seed=2)})
    with pytest.raises(ForecasterError, match=r"leave ray_workers unset\. Received: "):
        walk_forward(panel, settings, folds=2)
    with pytest.raises(ForecasterError, match=r"the search trains many small ones"):
        run_search(make_prices(), settings, tmp_path / "search", trials=1)
