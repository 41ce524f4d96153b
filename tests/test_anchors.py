"""The risk anchors: range-GARCH likelihood and recovery, no look-ahead, skipping."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecaster.errors import ForecasterError
from forecaster.evaluate import anchors, baselines, range_garch, scores

ROOT = Path(__file__).resolve().parent.parent
TRUE = {
    False: {"omega": 0.05, "alpha": 0.2, "beta": 0.8, "nu": 6.0},
    True: {"omega": 0.05, "alpha": 0.12, "gamma": 0.15, "beta": 0.8, "nu": 6.0},
}
# about four standard errors of each estimate on 20000 days (six seeds spread
# omega 0.034-0.064, alpha 0.08-0.24, gamma 0.13-0.20, beta 0.76-0.82, nu 5.9-6.3)
TOLERANCE = {"omega": 0.04, "alpha": 0.1, "gamma": 0.1, "beta": 0.07, "nu": 0.8}


def ohlc_prices(n: int = 900, seed: int = 3):
    """(prices (n,), ohlc (n, 4)) from a Range-GJR simulation (percent -> log)."""
    returns, ranges = range_garch.simulate(TRUE[True], n, seed=seed)
    log_close = np.log(100.0) + np.concatenate([[0.0], np.cumsum(returns[1:] / 100)])
    spread = np.sqrt(ranges * 4 * np.log(2)) / 100  # Parkinson: spread^2 / (4 ln 2)
    close = np.exp(log_close)
    high = close * np.exp(spread / 2)
    low = close * np.exp(-spread / 2)
    return close, np.column_stack([close, high, low, close])


def test_loglik_matches_a_direct_evaluation():
    """The filter and density against a plain loop and scipy's Student-t."""
    params = TRUE[True]
    returns, ranges = range_garch.simulate(params, 300, seed=1)
    seed = float(np.mean(returns**2))
    h, expected = seed, 0.0
    for j in range(len(returns)):
        if j:
            lever = params["gamma"] * (returns[j - 1] < 0)
            drive = (params["alpha"] + lever) * ranges[j - 1]
            h = params["omega"] + drive + params["beta"] * h  # h: yesterday's
        nu = params["nu"]
        scale = np.sqrt(h * (nu - 2) / nu)  # a unit-variance t's scale
        expected += stats.t.logpdf(returns[j], nu, scale=scale)
    assert range_garch.loglik(params, returns, ranges, seed) == pytest.approx(
        expected, rel=1e-10
    )


@pytest.mark.parametrize("leverage", [False, True])
def test_fit_recovers_known_parameters(leverage):
    returns, ranges = range_garch.simulate(TRUE[leverage], 20000, seed=11)
    fitted = range_garch.fit(returns, ranges, leverage=leverage)
    assert fitted.converged
    assert set(fitted.params) == set(TRUE[leverage])
    for name, value in TRUE[leverage].items():
        assert fitted.params[name] == pytest.approx(value, abs=TOLERANCE[name]), name
    truth = range_garch.loglik(TRUE[leverage], returns, ranges, fitted.seed)
    assert fitted.loglik >= truth  # the maximum is at least the truth's


def test_fit_reads_only_the_first_n_fit_returns():
    returns, ranges = range_garch.simulate(TRUE[False], 1200, seed=2)
    changed = returns.copy()
    changed[1000:] *= 5
    first = range_garch.fit(returns, ranges, n_fit=1000)
    again = range_garch.fit(changed, ranges, n_fit=1000)
    assert first.params == again.params


def test_simulate_refuses_an_explosive_variance():
    with pytest.raises(ForecasterError, match=r"^params must give a stationary"):
        range_garch.simulate({"omega": 0.1, "alpha": 1.0, "beta": 0.5, "nu": 5}, 10)


@pytest.fixture(scope="module")
def simulated():
    return ohlc_prices()


@pytest.mark.parametrize("family", list(anchors.LABELS))
def test_each_anchor_ignores_the_test_days(family, simulated):
    """Parameters come from the training days; a test day moves only later days."""
    prices, ohlc = simulated
    n_train, k = 700, 760
    before = anchors.anchor(family, prices, n_train, ohlc)
    changed, moved = prices.copy(), ohlc.copy()
    changed[k:] *= 0.8
    moved[k:] *= 0.8
    moved[k, 1] *= 1.05  # a wider range on day k too
    after = anchors.anchor(family, changed, n_train, moved)
    assert before.params == after.params
    day = k - n_train
    np.testing.assert_allclose(after.scale[: day + 1], before.scale[: day + 1])
    relative = [
        d.scale[day + 1] / p[k] for d, p in ((after, changed), (before, prices))
    ]
    assert relative[0] != pytest.approx(relative[1], rel=1e-6)


def test_range_anchors_beat_garch_on_range_driven_data(simulated):
    """On data whose variance follows the range, the range anchors score better."""
    prices, ohlc = simulated
    n_train, actual = 700, prices[700:]
    crps = {
        family: float(
            np.mean(anchors.anchor(family, prices, n_train, ohlc).crps(actual))
        )
        for family in ("garch_t", "range_gjr_t")
    }
    assert crps["range_gjr_t"] < crps["garch_t"]
    assert anchors.best_family(prices, n_train, ohlc) in anchors.RANGE_FAMILIES


def test_refit_uses_only_the_days_before_each_block(simulated):
    prices, ohlc = simulated
    n_train, every = 700, 50
    refit = anchors.refit_predictive("range_garch_t", prices, n_train, ohlc, every)
    first = anchors.anchor("range_garch_t", prices, n_train, ohlc)
    # the first block is the fixed-parameter forecast itself
    np.testing.assert_allclose(
        refit.scale[:every], first.scale[:every] * np.sqrt(first.df / (first.df - 2))
    )
    changed = prices.copy()
    changed[800:] *= 1.3  # block 3 onwards
    again = anchors.refit_predictive("range_garch_t", changed, n_train, ohlc, every)
    np.testing.assert_allclose(again.scale[:100], refit.scale[:100])
    assert refit.params["refits"] == 4
    assert len(np.unique(refit.nu)) == 4  # re-estimated per block


def test_refit_blocks_start_from_the_last_and_leave_the_store_of_fits(
    simulated, monkeypatch
):
    """An arch refit starts each block at the block before's estimates (fewer
    optimiser steps); only the first block, the fixed anchor's fit, is kept."""
    from arch.univariate.base import ARCHModel

    prices, _ = simulated
    n_train, every = 700, 50
    starts, real_fit = [], ARCHModel.fit

    def recording_fit(self, *args, **kwargs):
        starts.append(kwargs.get("starting_values"))
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(ARCHModel, "fit", recording_fit)
    anchors.forget_fits()
    refit = anchors.refit_predictive("egarch_t", prices, n_train, None, every)
    assert len(starts) == refit.params["refits"] == 4
    assert starts[0] is None and all(s is not None for s in starts[1:])
    returns = anchors.percent_returns(prices)
    assert list(anchors._FITS) == [
        ("egarch_t", n_train - 1, anchors._digest(returns, None))
    ]
    last = n_train + 3 * every - 1  # the last block's fit, warm and cold
    before = anchors.volatility("egarch_t", returns, None, last - every, cache=False)
    warm = anchors.volatility("egarch_t", returns, None, last, before.params, False)
    cold = anchors.volatility("egarch_t", returns, None, last, cache=False)
    assert warm.loglik == pytest.approx(cold.loglik, abs=1e-3)  # the same maximum


def test_skewed_t_scores_agree_with_its_quantiles(simulated):
    prices, ohlc = simulated
    dist = anchors.anchor("gjr_skewt", prices, 700, ohlc)
    actual = prices[700:]
    assert dist.skew[0] != 0
    pit = dist.cdf(dist.quantile(0.3))
    np.testing.assert_allclose(pit, 0.3, atol=1e-6)
    grid = (np.arange(99) + 0.5) / 99  # a coarser grid: within 1% of the fine one
    coarse = scores.grid_crps(dist, actual, grid)
    assert np.mean(dist.crps(actual)) == pytest.approx(coarse, rel=0.01)
    # the log score is the density's: integrate exp(-log score) on a grid
    y = np.linspace(
        actual[0] - 20 * dist.scale[0], actual[0] + 20 * dist.scale[0], 4001
    )
    one = anchors.StandardisedT(
        "one",
        dist.location[:1].repeat(len(y)),
        dist.scale[:1].repeat(len(y)),
        dist.nu[:1].repeat(len(y)),
        dist.skew[:1].repeat(len(y)),
    )
    assert np.trapezoid(np.exp(-one.log_score(y)), y) == pytest.approx(1, abs=1e-3)


def test_range_anchors_are_skipped_without_high_low(simulated, caplog):
    prices, _ = simulated
    days = baselines.TestDays(prices, 700)
    baselines.say_no_ranges.cache_clear()  # once a process: start afresh
    with caplog.at_level(logging.INFO, logger="forecaster"):
        made = {
            key: baselines.distribution(key, days)
            for key in baselines.REGISTRY
            if key != "conformal"  # the model's own bands: no model here
        }
        # a second series (of a panel, say) does not repeat the line
        assert baselines.distribution("range_garch_t", days) is None
    found = {key: dist for key, dist in made.items() if dist is not None}
    assert {"garch_t", "gjr_skewt", "egarch_t", "best_refit"} <= set(found)
    assert not set(anchors.RANGE_FAMILIES) & set(found)
    skipped = [r for r in caplog.records if "no High/Low" in r.getMessage()]
    assert len(skipped) == 1
    assert found["best_refit"].params["family"] not in anchors.RANGE_FAMILIES


@pytest.mark.slow  # train.py in a process; test_ranges checks the message fast
def test_high_below_low_is_one_line_naming_the_date(tmp_path):
    frame = pd.read_csv(ROOT / "data" / "AAPL.csv").iloc[:400]
    day = frame["Date"].iloc[300]
    frame.loc[300, "High"] = frame.loc[300, "Low"] * 0.9
    csv = tmp_path / "bad.csv"
    frame.to_csv(csv, index=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "train.py", "--csv", str(csv), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "High is below Low" in lines[0] and day in lines[0]
    assert not (tmp_path / "m").exists()


def test_a_degenerate_fit_is_an_error_kept_once_and_left_out(monkeypatch, caplog):
    """EGARCH on a series without volatility clustering can wander off (a
    daily volatility of 0.001% one day, 2,800% another): such a fit is an
    error, estimated once per run, and the anchor is left out of the table
    and the pool instead of giving NaN or zero-width bands."""
    rng = np.random.default_rng(5)
    prices = 50 * np.exp(np.cumsum(rng.standard_t(5, 400) * 0.015))
    returns = anchors.percent_returns(prices)
    calls = []

    def wandered(family, returns, ranges, n_fit, start=None):
        calls.append(family)
        sigma = np.full(len(returns), 1.5)
        sigma[n_fit + 10] = 1e-3  # a test day's volatility 1,500x below its sd
        return anchors.Volatility(family, sigma, 2.1, 0.0, {"nu": 2.1}, -1.0, n_fit)

    anchors.forget_fits()
    caplog.set_level(logging.WARNING, logger="forecaster")
    monkeypatch.setattr(anchors, "_estimate", wandered)
    monkeypatch.setattr(anchors, "_DEGENERATE", set())  # none said yet
    for _ in range(2):
        with pytest.raises(ForecasterError, match="EGARCH.*degenerate fit"):
            anchors.volatility("egarch_t", returns, None, 299)
    assert calls == ["egarch_t"]  # the failure is kept: no second estimate
    with pytest.raises(ForecasterError, match="degenerate"):  # another series
        anchors.volatility("egarch_t", returns * 1.1, None, 299)
    assert calls == ["egarch_t"] * 2  # estimated, but not said again
    days = baselines.TestDays(prices, 300)
    assert baselines.distribution("egarch_t", days) is None
    said = [r.message for r in caplog.records if "degenerate" in r.message]
    assert len(said) == 1 and "; left out. Later ones" in said[0]  # one line, once
    anchors.forget_fits()


def test_a_familys_non_convergence_is_said_once(caplog, monkeypatch):
    """A panel's 200 series each fitting EGARCH would repeat "did not
    converge" 200 times: the first is a warning, later ones of that family
    debug lines; another family still gets its own warning."""
    monkeypatch.setattr(anchors, "_UNCONVERGED", set())
    with caplog.at_level(logging.DEBUG, logger="forecaster"):
        for family in ("egarch_t", "egarch_t", "egarch_t", "garch_t"):
            anchors._not_converged(family, " (optimizer flag 9)")
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    warned = [m.split(" estimation")[0] for level, m in said if level == "WARNING"]
    assert warned == ["EGARCH(1,1,1)-t", "GARCH(1,1)-t"]
    assert [level for level, _ in said].count("DEBUG") == 2
