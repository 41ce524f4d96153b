"""Tests for trading calendars: known holidays skipped, early closes kept, checks."""

import pandas as pd
import pytest

from forecaster.data.calendars import check_history, sessions_after, validate_calendar
from forecaster.errors import ForecasterError
from forecaster.forecast.future import future_dates


def _days(dates) -> list[str]:
    return list(pd.DatetimeIndex(dates).strftime("%Y-%m-%d"))


def test_new_years_day_2019_is_skipped():
    assert _days(sessions_after(pd.Timestamp("2018-12-31"), 2, "XNYS")) == [
        "2019-01-02",
        "2019-01-03",
    ]


def test_good_friday_2013_is_skipped_in_new_york_and_london():
    assert _days(future_dates(pd.Timestamp("2013-03-27"), 3)) == [
        "2013-03-28",
        "2013-04-01",
        "2013-04-02",
    ]
    # London also closes on Easter Monday.
    assert _days(future_dates(pd.Timestamp("2013-03-27"), 3, "XLON")) == [
        "2013-03-28",
        "2013-04-02",
        "2013-04-03",
    ]


def test_thanksgiving_is_skipped_and_the_early_close_after_it_kept():
    assert _days(sessions_after(pd.Timestamp("2019-11-26"), 3, "XNYS")) == [
        "2019-11-27",
        "2019-11-29",  # closes at 13:00, still a session
        "2019-12-02",
    ]


def test_codes_match_case_insensitively():
    assert validate_calendar("xlon") == "XLON"


def test_unknown_code_lists_examples_and_where_to_look():
    with pytest.raises(
        ForecasterError,
        match=r"Unknown calendar 'XXXX': use an exchange code such as XNYS, .*"
        r"XLON.*get_calendar_names",
    ):
        validate_calendar("XXXX")


def test_forecast_past_the_known_range_says_it_cannot():
    with pytest.raises(
        ForecasterError,
        match=r"calendar XSHG knows sessions only up to \d{4}-12-31 .* fewer than "
        r"days=400: forecast fewer days",
    ):
        sessions_after(pd.Timestamp("2026-06-01"), 400, "XSHG")


def test_forecast_past_the_default_end_extends_the_calendar():
    dates = sessions_after(pd.Timestamp("2040-12-20"), 5, "XNYS")
    assert _days(dates) == [
        "2040-12-21",
        "2040-12-24",
        "2040-12-26",  # Christmas skipped
        "2040-12-27",
        "2040-12-28",
    ]


def test_history_matching_the_calendar_has_no_warning():
    sessions = sessions_after(pd.Timestamp("2019-10-31"), 40, "XNYS")
    assert check_history(sessions, "XNYS") is None


def test_history_with_closed_days_and_missing_sessions_warns_once():
    sessions = sessions_after(pd.Timestamp("2019-10-31"), 40, "XNYS")
    dates = sessions.drop(pd.Timestamp("2019-12-02")).union(
        pd.DatetimeIndex(["2019-11-28"])  # Thanksgiving
    )
    warning = check_history(dates, "XNYS")
    assert warning == (
        "the history has 1 days that XNYS says were closed (e.g. 2019-11-28) and "
        "misses 1 sessions it says were open (e.g. 2019-12-02): a series from "
        "another market should use its own calendar (--calendar, e.g. XLON for "
        "London)"
    )


def test_the_bundle_records_its_calendar_and_predict_can_override_it(
    bundle_copy, tmp_path
):
    from forecaster.store.bundle import load_bundle
    from forecaster.workflows.runs import run_forecast

    assert load_bundle(bundle_copy).settings.data.calendar == "XNYS"
    report = run_forecast(str(bundle_copy), days=3, out=tmp_path, calendar="XLON")
    last = pd.Timestamp(report.last_date)
    assert list(report.frame["date"]) == _days(sessions_after(last, 3, "XLON"))


@pytest.mark.parametrize("script", ["train", "predict"])
def test_unknown_calendar_flag_is_a_one_line_error(script, capsys, tmp_path):
    import predict
    import train
    from forecaster.cli import main as cli

    main = {"train": train.main, "predict": predict.main}[script]
    flags = ["--calendar", "XXXX"]
    if script == "train":
        flags += ["--out", str(tmp_path / "b")]
    assert cli.run(main, flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: Unknown calendar 'XXXX': use an exchange code")
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_training_warns_once_when_the_history_disagrees(tmp_path, caplog):
    import logging

    from conftest import make_prices, tiny_settings, write_csv

    from forecaster.workflows.runs import run_training

    csv = write_csv(tmp_path / "WALK.csv", make_prices())  # business days of 2020
    settings = tiny_settings(csv, train__epochs=1)
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        run_training(settings, out=tmp_path / "bundle")
    warnings = [  # forecaster's own (TensorFlow may log a retracing note)
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and r.name.startswith("forecaster")
    ]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "the history has 9 days that XNYS says were closed (e.g. 2020-01-01, "
        "2020-01-20, 2020-02-17, ...): a series from another market should use"
    )
