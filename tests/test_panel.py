"""Tests for forecaster.data.panel: the Panel type, its cut-off date and its loaders."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yfinance
from conftest import write
from panel_fakes import (
    long_csv_text,
    random_walk_ohlcv,
    three_tickers,
    yf_history,
    yf_panel_frame,
)
from yfinance.exceptions import YFPricesMissingError

from forecaster.data import read_price_csv
from forecaster.data.frames import panel_from_pandas
from forecaster.data.panel import (
    is_long_format,
    load_panel,
    read_long_csv,
    read_panel_csvs,
    read_panel_dir,
)
from forecaster.data.series import Panel, Series, check_series_name, series_file
from forecaster.data.symbols import download_panel
from forecaster.errors import ForecasterError
from forecaster.prep.panel import cutoff_date, drop_short, train_rows

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [ROOT / "data" / f"{name}.csv" for name in ("AAPL", "GOOG", "MSFT")]
SAMPLE_PANEL = ROOT / "data" / "panel_long.csv"


def write_ohlcv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index_label="Date", date_format="%Y-%m-%d")
    return path


def generated_files(tmp_path: Path, names=("AAA", "BBB", "CCC"), n=60) -> list[Path]:
    """One generated random-walk OHLCV CSV per name (not market data)."""
    return [
        write_ohlcv(tmp_path / f"{name}.csv", random_walk_ohlcv(n, seed))
        for seed, name in enumerate(names)
    ]


# ----------------------------------------------------------- several CSVs


def test_several_csvs_are_named_by_stem_in_order():
    panel = read_panel_csvs([SAMPLES[2], SAMPLES[0], SAMPLES[1]])
    assert panel.names == ["MSFT", "AAPL", "GOOG"]
    for path in SAMPLES:
        item = panel[path.stem]
        expected = read_price_csv(path).values
        pd.testing.assert_series_equal(item.values, expected)
        assert list(item.ohlcv.columns) == [
            "Open",
            "High",
            "Low",
            "Close",
            "Adj Close",
            "Volume",
        ]
        assert item.ohlcv.index.equals(item.values.index)
        assert item.source == {"kind": "csv", "path": str(path), "column": "Adj Close"}
        assert item.where == repr(str(path))
    assert panel["GOOG"].values.index[0] == pd.Timestamp("2004-08-19")


def test_column_picks_the_target_and_files_without_ohlcv(tmp_path):
    plain = write(tmp_path, "Date,Price\n2024-01-02,5\n2024-01-03,6\n", "P.csv")
    closes = write(tmp_path, "Date,Close\n2024-01-02,5\n2024-01-03,6\n", "C.csv")
    panel = read_panel_csvs([plain, closes])
    assert panel["P"].ohlcv is None
    assert list(panel["C"].ohlcv.columns) == ["Close"]
    opens = read_panel_csvs(generated_files(tmp_path), column="open")
    assert opens["AAA"].values.name == "Open"
    np.testing.assert_array_equal(opens["AAA"].values, opens["AAA"].ohlcv["Open"])


def test_one_bad_file_is_named(tmp_path):
    paths = generated_files(tmp_path)
    bad = write(tmp_path, "Date,Close\n2024-01-02,abc\n", "BAD.csv")
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            f"Price column 'Close' in {str(bad)!r} has a value that is not a number: "
            "'abc' on 2024-01-02 (line 2). Fix or blank that cell."
        ),
    ):
        read_panel_csvs([paths[0], bad, paths[1]])
    missing = tmp_path / "GONE.csv"
    with pytest.raises(ForecasterError, match=f"CSV file not found: {str(missing)!r}"):
        read_panel_csvs([paths[0], missing])


def test_skip_bad_goes_on_with_one_warning(tmp_path, caplog):
    paths = generated_files(tmp_path)
    bad = write(tmp_path, "Date,Close\n2024-01-02,abc\n", "BAD.csv")
    empty = write(tmp_path, "", "EMPTY.csv")
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        panel = read_panel_csvs([paths[0], bad, empty, paths[1]], skip_bad=True)
    assert panel.names == ["AAA", "BBB"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith("skipped 2 series that could not be used: 'BAD' (")
    assert f"'EMPTY' (CSV file is empty: {str(empty)!r}." in warnings[0]
    assert panel.notes == warnings


def test_every_file_bad_is_an_error(tmp_path):
    bad = write(tmp_path, "Date,Close\n2024-01-02,abc\n", "BAD.csv")
    with pytest.raises(
        ForecasterError, match=r"^No usable series among 1 file\(s\): 'BAD': Price"
    ):
        read_panel_csvs([bad], skip_bad=True)


def test_the_same_stem_twice_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_ohlcv(tmp_path / "a" / "AAPL.csv", random_walk_ohlcv(30, 0))
    second = write_ohlcv(tmp_path / "b" / "aapl.csv", random_walk_ohlcv(30, 1))
    message = (
        f"The same series 'aapl' is given twice: {str(first)!r} and {str(second)!r} "
        "(file stems, ignoring case). Give each series once."
    )
    with pytest.raises(ForecasterError, match=re.escape(message)):
        read_panel_csvs([first, second], skip_bad=True)
    with pytest.raises(ForecasterError, match="is given twice"):
        read_panel_csvs([first, first])


def test_empty_list_of_paths():
    with pytest.raises(
        ForecasterError, match=r"Give at least one CSV file. Received: paths=\[\]"
    ):
        read_panel_csvs([])


def test_conflicting_ohlcv_rows_for_one_date(tmp_path):
    path = write(
        tmp_path,
        "Date,Close,Volume\n2024-01-02,5,10\n2024-01-02,5,11\n2024-01-03,6,12\n",
        "X.csv",
    )
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            f"Conflicting rows for the same date in {str(path)!r}: 2024-01-02. "
            "Keep one row per date."
        ),
    ):
        read_panel_csvs([path])


# ------------------------------------------------------------------ a folder


def test_folder_of_csvs_sorted_without_other_files(tmp_path):
    generated_files(tmp_path, names=("ZZZ", "AAA", "MMM"))
    (tmp_path / "notes.txt").write_text("not prices")
    (tmp_path / "sub.csv").mkdir()
    write_ohlcv(tmp_path / "UPPER.CSV", random_walk_ohlcv(30, 9))
    assert read_panel_dir(tmp_path).names == ["AAA", "MMM", "UPPER", "ZZZ"]


def test_folder_errors(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(
        ForecasterError,
        match=re.escape(f"CSV folder {str(missing)!r} does not exist. Give a folder"),
    ):
        read_panel_dir(missing)
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            f"No .csv files in the folder {str(tmp_path)!r}: found ['readme.txt']."
        ),
    ):
        read_panel_dir(tmp_path)
    with pytest.raises(ForecasterError, match="is not a folder"):
        read_panel_dir(tmp_path / "readme.txt")


# ------------------------------------------------------------- long format


@pytest.mark.parametrize("ticker_column", ["ticker", "symbol", "Name", "TICKER"])
def test_long_format_ticker_columns(tmp_path, ticker_column):
    frames = {"MSFT": random_walk_ohlcv(40, 1), "AAPL": random_walk_ohlcv(30, 2)}
    path = write(tmp_path, long_csv_text(frames, ticker_column), "all.csv")
    panel = read_long_csv(path)
    assert panel.names == ["AAPL", "MSFT"]  # sorted by name
    for name, frame in frames.items():
        item = panel[name]
        assert item.values.name == "close"
        np.testing.assert_allclose(item.values.to_numpy(), frame["Close"].to_numpy())
        assert list(item.ohlcv.columns) == ["Open", "High", "Low", "Close", "Volume"]
        assert item.source == {
            "kind": "long-csv",
            "path": str(path),
            "ticker": name,
            "column": "close",
        }
        assert ticker_column in item.columns
        assert item.where == f"{str(path)!r} (ticker {name!r})"


def test_kaggle_all_stocks_layout(tmp_path):
    text = (
        "date,open,high,low,close,volume,Name\n"
        "2013-02-08,15.07,15.12,14.63,14.75,8407500,AAL\n"
        "2013-02-11,14.89,15.01,14.26,14.46,8882000,AAL\n"
        "2013-02-08,67.7142,68.4014,66.8928,67.8542,158168416,AAPL\n"
        "2013-02-11,68.0714,69.2771,67.6071,68.5614,129029425,AAPL\n"
    )
    panel = load_panel(csv=[write(tmp_path, text, "all_stocks_5yr.csv")])
    assert panel.names == ["AAL", "AAPL"]
    assert panel["AAPL"].values.to_dict() == {
        pd.Timestamp("2013-02-08"): 67.8542,
        pd.Timestamp("2013-02-11"): 68.5614,
    }


def test_long_format_prefers_adj_close_and_takes_column(tmp_path):
    text = (
        "Date,Symbol,Close,Adj Close,Volume\n"
        "2024-01-02,X,10,5,1\n2024-01-03,X,11,5.5,2\n"
    )
    path = write(tmp_path, text, "x.csv")
    assert read_long_csv(path)["X"].values.tolist() == [5.0, 5.5]
    assert read_long_csv(path, column="close")["X"].values.tolist() == [10.0, 11.0]


def test_long_format_errors(tmp_path):
    no_ticker = write(tmp_path, "date,close\n2024-01-02,5\n", "a.csv")
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            f"No ticker column in the long-format file {str(no_ticker)!r}: found "
            "columns ['date', 'close']. Name it 'ticker', 'symbol' or 'Name'."
        ),
    ):
        read_long_csv(no_ticker)
    blank = write(tmp_path, "date,ticker,close\n2024-01-02,,5\n", "b.csv")
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            f"1 row(s) of {str(blank)!r} have no ticker in column 'ticker', e.g. a "
            "row with ['2024-01-02', '', '5'] (line 2). Fill or remove those rows."
        ),
    ):
        read_long_csv(blank)
    cased = write(
        tmp_path, "date,ticker,close\n2024-01-02,abc,5\n2024-01-02,ABC,6\n", "c.csv"
    )
    with pytest.raises(
        ForecasterError, match="The same series 'abc' is given twice: 'ABC' and 'abc'"
    ):
        read_long_csv(cased, skip_bad=True)


def test_long_format_conflicting_rows(tmp_path):
    text = (
        "date,ticker,close,volume\n"
        "2024-01-02,AAA,5,100\n2024-01-03,AAA,6,100\n"
        "2024-01-02,BBB,7,100\n2024-01-02,BBB,7.5,100\n2024-01-03,BBB,8,100\n"
    )
    path = write(tmp_path, text, "long.csv")
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            f"Conflicting rows for the same date in {str(path)!r} (ticker 'BBB'): "
            "2024-01-02. Keep one row per date."
        ),
    ):
        read_long_csv(path)
    assert read_long_csv(path, skip_bad=True).names == ["AAA"]
    identical = text.replace("2024-01-02,BBB,7.5,100", "2024-01-02,BBB,7,100")
    panel = read_long_csv(write(tmp_path, identical, "same.csv"))
    assert panel["BBB"].values.tolist() == [7.0, 8.0]


def test_is_long_format(tmp_path):
    assert is_long_format(SAMPLE_PANEL)
    assert not is_long_format(SAMPLES[0])
    assert not is_long_format(tmp_path / "missing.csv")


# --------------------------------------------------------------- safe names

UNSAFE = {
    "../../x": "it contains '/'",
    "..": "it starts with '.'",
    "a\\b": "it contains '\\\\'",
    "tab\there": "it contains '\\t'",
    "new\nline": "it contains '\\n'",
    "x" * 65: "it has 65 characters, more than 64",
    " AAPL": "it starts or ends with a space",
    "": "it is empty",
    "C:x": "it contains ':'",
    "\U00020000" * 64: "it takes more than 200 bytes in UTF-8",
}


@pytest.mark.parametrize("name", sorted(UNSAFE))
def test_unsafe_names_are_refused(name):
    with pytest.raises(ForecasterError) as caught:
        check_series_name(name, "column 'ticker' of 'x.csv'")
    message = str(caught.value)
    assert message.startswith("Series name ")
    assert "(from column 'ticker' of 'x.csv') is not a safe file name: " in message
    assert UNSAFE[name] in message
    assert message.endswith(
        "Rename it: use 1 to 64 letters, digits or . _ - ^ = (spaces only inside), "
        "not starting with '.'."
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    "name",
    [
        "AAPL",
        "BRK.B",
        "BRK-B",
        "^GSPC",
        "EURUSD=X",
        "my prices",
        "x" * 64,
        "Société_Générale",
    ],
)
def test_safe_names(name, tmp_path):
    assert check_series_name(name, "test") == name
    path = series_file(tmp_path, name, ".png")
    assert path.parent == tmp_path.resolve()


def test_dot_dot_slash_ticker_never_escapes_the_output_folder(tmp_path):
    """A long file naming a ticker ../../x: refused, or left out with skip_bad."""
    text = (
        "date,ticker,close\n"
        "2024-01-02,../../x,5\n2024-01-03,../../x,6\n"
        "2024-01-02,OK,5\n2024-01-03,OK,6\n"
    )
    path = write(tmp_path, text, "long.csv")
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            f"Series name '../../x' (from column 'ticker' of {str(path)!r}) is not a "
            "safe file name: it contains '/'."
        ),
    ):
        read_long_csv(path)
    panel = read_long_csv(path, skip_bad=True)
    assert panel.names == ["OK"]
    assert "'../../x' (Series name '../../x'" in panel.notes[0]
    out = tmp_path / "out"
    for name in panel:
        assert series_file(out, name, ".png").parent == out.resolve()
    with pytest.raises(ForecasterError, match="not a safe file name"):
        series_file(out, "../../x", ".png")
    with pytest.raises(ForecasterError, match="would write outside"):
        series_file(out, "OK", "/../../x.png")


def test_unsafe_file_stem(tmp_path):
    path = write_ohlcv(tmp_path / ".hidden.csv", random_walk_ohlcv(30, 0))
    with pytest.raises(
        ForecasterError,
        match=re.escape(f"Series name '.hidden' (from the file name {str(path)!r})"),
    ):
        read_panel_csvs([path])


def test_panel_type():
    panel = read_panel_csvs(SAMPLES)
    assert isinstance(panel, Panel) and len(panel) == 3
    assert list(panel) == panel.names == ["AAPL", "GOOG", "MSFT"]
    assert "AAPL" in panel and "IBM" not in panel
    assert panel.select(["MSFT", "AAPL"]).names == ["MSFT", "AAPL"]
    assert panel.without(["GOOG"]).names == ["AAPL", "MSFT"]
    assert repr(panel).startswith("Panel(AAPL (3270 days), GOOG (2148 days)")
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "No series named 'IBM' in this panel: it holds ['AAPL', 'GOOG', "
            "'MSFT']. Choose one of those."
        ),
    ):
        panel.select(["IBM"])
    one = Panel([read_price_csv(SAMPLES[0])])
    assert one.names == ["AAPL"] and one["AAPL"].ohlcv is None
    assert isinstance(one["AAPL"], Series)
    renamed = read_price_csv(SAMPLES[0])
    renamed.name = "aapl"
    with pytest.raises(ForecasterError, match="The series name 'aapl' is given twice"):
        Panel([panel["AAPL"], renamed])
    with pytest.raises(ForecasterError, match="A panel needs at least one series"):
        Panel([])


# ---------------------------------------------------------- the cut-off


def test_cutoff_is_the_75_percent_point_of_the_union_of_dates():
    panel = read_panel_csvs(SAMPLES)
    union = panel.dates
    assert len(union) == 3270  # GOOG's days are a subset of the others'
    cutoff = cutoff_date(panel)
    assert cutoff == union[int(3270 * 0.75)]
    rows = train_rows(panel, cutoff)
    assert rows == {"AAPL": 2452, "GOOG": 1330, "MSFT": 2452}
    for name, item in panel.items():
        assert (item.values.index[: rows[name]] < cutoff).all()
        assert (item.values.index[rows[name] :] >= cutoff).all()


def test_cutoff_of_one_series_is_todays_split():
    item = read_panel_csvs([SAMPLES[1]])
    n = len(item["GOOG"])
    cutoff = cutoff_date(item, 0.8)
    assert train_rows(item, cutoff) == {"GOOG": int(n * 0.8)}


def test_cutoff_shared_when_series_start_late(tmp_path):
    early = random_walk_ohlcv(100, 0, start="2020-01-01")
    late = random_walk_ohlcv(20, 1, start=f"{early.index[80]:%Y-%m-%d}")
    panel = read_panel_csvs(
        [write_ohlcv(tmp_path / "E.csv", early), write_ohlcv(tmp_path / "L.csv", late)]
    )
    cutoff = cutoff_date(panel)
    assert cutoff == early.index[75]
    assert train_rows(panel, cutoff) == {"E": 75, "L": 0}


def test_cutoff_errors():
    panel = read_panel_csvs(SAMPLES[:1])
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "train_fraction must be between 0 and 1 (exclusive). "
            "Received: train_fraction=1.5"
        ),
    ):
        cutoff_date(panel, 1.5)


def test_drop_short_names_the_series_and_its_rows(caplog):
    panel = read_panel_csvs(SAMPLES)
    cutoff = cutoff_date(panel)
    kept, notes = drop_short(panel, window=100, horizon=1, cutoff=cutoff)
    assert kept.names == panel.names and notes == []
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        kept, notes = drop_short(panel, window=1400, horizon=5, cutoff=cutoff)
    assert kept.names == ["AAPL", "MSFT"]
    assert notes == [
        "skipped series 'GOOG' has 1330 row(s) before the cut-off 2009-11-30; "
        "window=1400 and horizon=5 need 1424"
    ]
    assert [r.getMessage() for r in caplog.records] == notes
    assert kept.notes[-1] == notes[0]
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "No series is long enough: series 'AAPL' has 2452 row(s) before the "
            "cut-off 2009-11-30; window=3000 and horizon=1 need 3020;"
        ),
    ):
        drop_short(panel, window=3000, horizon=1, cutoff=cutoff)


def test_drop_short_series_that_ends_before_the_cutoff(tmp_path):
    early = random_walk_ohlcv(200, 0)
    ended = early.iloc[:120]
    panel = read_panel_csvs(
        [write_ohlcv(tmp_path / "E.csv", early), write_ohlcv(tmp_path / "X.csv", ended)]
    )
    kept, notes = drop_short(panel, 10, 1, cutoff_date(panel))
    assert kept.names == ["E"]
    assert notes == [
        "skipped series 'X' has 0 row(s) from the cut-off 2020-07-29 on; "
        "horizon=1 needs 1"
    ]


# ------------------------------------------------------------ downloads


class FakePanelDownload:
    """Stands in for yfinance.download: returns a frame, raises and/or logs."""

    def __init__(self, result=None, error=None, logged=()):
        self.result, self.error, self.logged = result, error, logged
        self.calls = []

    def __call__(self, tickers, **kwargs):
        self.calls.append((tickers, kwargs))
        yf_log = logging.getLogger("yfinance")
        for message in self.logged:
            yf_log.error(message)  # real yfinance logs failures, not raises
        if self.error is not None:
            raise self.error
        return self.result


GOOG_LOGGED = (
    "\n1 Failed download:",
    "['GOOG']: YFPricesMissingError('possibly delisted; no price data found')",
)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore:.*inplace.*")
def test_fake_panel_frame_matches_real_yfinance(monkeypatch, tmp_path, caplog):
    """The real yfinance.download, several tickers, only Ticker.history faked."""
    histories = {
        "AAPL": yf_history(100.0 + np.arange(40), "2024-01-02"),
        "MSFT": yf_history(200.0 + np.arange(38), "2024-01-04"),
    }

    def history(self, **kwargs):
        if self.ticker not in histories:
            raise YFPricesMissingError(self.ticker, "")  # a delisted symbol
        frame = histories[self.ticker].copy()
        frame.index = frame.index.tz_localize("America/New_York")
        return frame

    monkeypatch.setattr(yfinance.Ticker, "history", history)
    real = yfinance.download(
        ["AAPL", "MSFT", "GOOG"],
        start="2024-01-01",
        auto_adjust=True,
        progress=False,
        threads=False,
    )
    pd.testing.assert_frame_equal(real, three_tickers())
    assert list(real.columns.names) == ["Price", "Ticker"]
    assert real.xs("GOOG", axis=1, level="Ticker").isna().all().all()
    # The whole path through the real library: GOOG is named, with yfinance's reason.
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "yfinance returned no prices for 'GOOG' (['GOOG']: "
            "YFPricesMissingError('possibly delisted; no price data found')): the "
            "symbol may be unknown or delisted, and there is no cache at"
        ),
    ):
        download_panel(
            ["AAPL", "MSFT", "GOOG"],
            "2024-01-01",
            None,
            tmp_path,
            download=yfinance.download,
        )


def test_download_panel_one_call_named_by_symbol(tmp_path):
    fake = FakePanelDownload(result=three_tickers(), logged=GOOG_LOGGED)
    panel = download_panel(
        ["msft", "AAPL", "GOOG"],
        "2024-01-01",
        "2024-03-01",
        tmp_path,
        download=fake,
        skip_bad=True,
    )
    assert len(fake.calls) == 1
    assert fake.calls[0][0] == ["MSFT", "AAPL", "GOOG"]
    assert fake.calls[0][1]["end"] == "2024-03-02"  # yfinance's end is exclusive
    assert panel.names == ["MSFT", "AAPL"]
    assert panel["AAPL"].values.index[0] == pd.Timestamp("2024-01-02")
    assert panel["MSFT"].values.index[0] == pd.Timestamp("2024-01-04")
    assert len(panel["MSFT"]) == 38 and len(panel["AAPL"]) == 40
    assert list(panel["MSFT"].ohlcv.columns) == [
        "Open",
        "High",
        "Low",
        "Close",
        "Volume",
    ]
    assert panel["MSFT"].source == {
        "kind": "ticker",
        "ticker": "MSFT",
        "column": "Close",
        "start": "2024-01-01",
        "end": "2024-03-01",
        "cache": str(tmp_path / "MSFT.csv"),
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["AAPL.csv", "MSFT.csv"]
    assert panel.notes[0].startswith(
        "skipped 1 series that could not be used: 'GOOG' (yfinance returned no "
        "prices for 'GOOG'"
    )


def test_download_panel_falls_back_on_each_cache(tmp_path, caplog):
    download_panel(
        ["AAPL", "MSFT"],
        "2024-01-01",
        None,
        tmp_path,
        download=FakePanelDownload(result=three_tickers()),
    )
    goog = yf_panel_frame({"GOOG": yf_history(300.0 + np.arange(10))})
    goog.columns = goog.columns.droplevel("Ticker")
    goog.to_csv(tmp_path / "GOOG.csv", date_format="%Y-%m-%d")
    fake = FakePanelDownload(result=three_tickers(), logged=GOOG_LOGGED)
    with caplog.at_level(logging.WARNING, logger="forecaster"):
        panel = download_panel(
            ["AAPL", "MSFT", "GOOG"], "2024-01-01", None, tmp_path, download=fake
        )
    assert panel.names == ["AAPL", "MSFT", "GOOG"]
    assert panel["GOOG"].source["from_cache"] is True
    assert panel["GOOG"].ohlcv["Volume"].iloc[0] == 1000
    assert any("using cached prices from" in r.getMessage() for r in caplog.records)
    offline = FakePanelDownload(error=ConnectionError("no route to host"))
    panel = download_panel(
        ["AAPL", "MSFT"], "2024-01-01", None, tmp_path, download=offline
    )
    assert [panel[n].source["from_cache"] for n in panel] == [True, True]
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "Could not reach Yahoo Finance to download 'IBM' (ConnectionError: no "
            "route to host), and there is no cache at"
        ),
    ):
        download_panel(["AAPL", "IBM"], "2024-01-01", None, tmp_path, download=offline)


def test_download_panel_refuses_bad_symbol_lists(tmp_path):
    fake = FakePanelDownload(result=three_tickers())
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "The same series 'AAPL' is given twice: 'AAPL' and 'AAPL' (symbols, "
            "ignoring case). Give each series once."
        ),
    ):
        download_panel(["AAPL", "aapl"], cache_dir=tmp_path, download=fake)
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "Series name '../../X' (from tickers) is not a safe file name: it "
            "contains '/'."
        ),
    ):
        download_panel(["AAPL", "../../x"], cache_dir=tmp_path, download=fake)
    with pytest.raises(ForecasterError, match="Give at least one symbol"):
        download_panel([], cache_dir=tmp_path, download=fake)
    assert fake.calls == []
    assert list(tmp_path.iterdir()) == []


def test_download_panel_splits_a_string(tmp_path):
    fake = FakePanelDownload(result=three_tickers())
    panel = download_panel("AAPL, MSFT", cache_dir=tmp_path, download=fake)
    assert panel.names == ["AAPL", "MSFT"]


# ------------------------------------------------------------ the dispatcher


def test_load_panel_sources(tmp_path):
    assert load_panel(csv=[str(p) for p in SAMPLES]).names == ["AAPL", "GOOG", "MSFT"]
    assert load_panel().names == ["AAPL"]  # the shipped sample, as today
    assert load_panel(csv=str(SAMPLE_PANEL)).names == ["AAPL", "GOOG", "MSFT"]
    assert load_panel(long_csv=SAMPLE_PANEL).names == ["AAPL", "GOOG", "MSFT"]
    generated_files(tmp_path, names=("B", "A"))
    assert load_panel(csv_dir=tmp_path).names == ["A", "B"]
    fake = FakePanelDownload(result=three_tickers())
    panel = load_panel(
        tickers=["AAPL", "MSFT"], cache_dir=tmp_path / "c", download=fake
    )
    assert panel.names == ["AAPL", "MSFT"]
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "Give one source of prices (csv, csv_dir, long_csv or tickers), not "
            "several. "
            "Received: csv='a.csv', tickers=['AAPL']"
        ),
    ):
        load_panel(csv="a.csv", tickers=["AAPL"])


def test_sample_panel_matches_the_three_files():
    """data/panel_long.csv holds the last 1,000 days of the three real files."""
    panel = read_long_csv(SAMPLE_PANEL)
    assert SAMPLE_PANEL.stat().st_size < 300_000
    for path in SAMPLES:
        item = panel[path.stem]
        whole = read_panel_csvs([path])[path.stem]
        assert len(item) == 1000
        pd.testing.assert_series_equal(
            item.values, whole.values.iloc[-1000:], check_names=False
        )
        pd.testing.assert_frame_equal(item.ohlcv, whole.ohlcv.iloc[-1000:])


# ------------------------------------------------------------ pandas objects


def test_panel_from_pandas_frames_and_series():
    frames = {"AAA": random_walk_ohlcv(40, 0), "BBB": random_walk_ohlcv(30, 1)}
    panel = panel_from_pandas(frames)
    assert panel.names == ["AAA", "BBB"]
    np.testing.assert_array_equal(panel["AAA"].values, frames["AAA"]["Close"])
    assert list(panel["BBB"].ohlcv.columns) == [
        "Open",
        "High",
        "Low",
        "Close",
        "Volume",
    ]
    assert panel["AAA"].where == "the prices passed in ('AAA')"
    one = panel_from_pandas(frames["AAA"]["Close"])
    assert one.names == ["prices"] and one["prices"].ohlcv is None
    assert panel_from_pandas(panel) is panel
    assert panel_from_pandas(read_price_csv(SAMPLES[0])).names == ["AAPL"]


def test_panel_from_pandas_refuses_text_and_unsafe_names():
    frame = random_walk_ohlcv(10, 0).astype(object)
    frame.iloc[3, 4] = "lots"
    with pytest.raises(
        ForecasterError,
        match=re.escape(
            "Column 'Volume' of the prices passed in ('X') must hold numbers: 'lots' "
            "on 2020-01-06. Convert or drop that value."
        ),
    ):
        panel_from_pandas({"X": frame})
    with pytest.raises(ForecasterError, match="Series name '../x' .* is not a safe"):
        panel_from_pandas({"../x": random_walk_ohlcv(10, 0)})
