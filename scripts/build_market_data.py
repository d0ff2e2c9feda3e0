"""Rebuild the market data bundled with metazoo.

The bundled file ``metazoo/data/_bundled/markets.csv.gz`` is made from data sets that ship
inside two PyPI packages, so it can be rebuilt offline on any machine:

* ``arch`` (NCSA license): S&P 500 and NASDAQ Composite daily OHLCV from Yahoo Finance,
  WTI crude oil spot price (FRED series DCOILWTICO, close only).
* ``pmdarima`` (MIT license): Microsoft (MSFT) daily OHLCV.

Usage::

    pip install arch pmdarima pandas
    python scripts/build_market_data.py            # writes the bundled file
    python scripts/build_market_data.py --check    # compares with the bundled file

Rows before ``--start`` are left out (MSFT's early prices are quoted to a few cents after split
adjustment, which makes their returns mostly rounding noise). WTI is quoted on every weekday by
FRED, with no value on exchange holidays: those rows carry no price and are removed here; the
count is printed and recorded in ``MARKETS.md``.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "metazoo" / "data" / "_bundled" / "markets.csv.gz"
COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume"]


def _from_yahoo(frame: pd.DataFrame, symbol: str) -> pd.DataFrame:
    out = frame.rename(columns=str.lower)[["open", "high", "low", "close", "volume"]]
    out = out.rename_axis("date").reset_index()
    out["symbol"] = symbol
    return out


def load_sources(start: str) -> tuple[pd.DataFrame, dict]:
    """Read every source from ``start`` on; return the long frame and what was removed."""
    from arch.data import nasdaq, sp500, wti
    from pmdarima.datasets import load_msft

    parts = [_from_yahoo(sp500.load(), "SP500"), _from_yahoo(nasdaq.load(), "NASDAQ")]

    msft = load_msft().rename(columns=str.lower)
    msft["date"] = pd.to_datetime(msft["date"])
    msft["symbol"] = "MSFT"
    parts.append(msft[COLUMNS])

    oil = wti.load().rename(columns={"DCOILWTICO": "close"}).rename_axis("date").reset_index()
    oil = oil[oil["date"] >= pd.Timestamp(start)]
    removed = {"WTI weekdays without a price (exchange holidays)": int(oil["close"].isna().sum())}
    oil = oil.dropna(subset=["close"])
    oil["symbol"] = "WTI"
    parts.append(oil)

    frame = pd.concat(parts, ignore_index=True).reindex(columns=COLUMNS)
    frame["date"] = pd.to_datetime(frame["date"]).dt.normalize()
    frame["volume"] = frame["volume"].round().astype("Int64")
    return frame[frame["date"] >= pd.Timestamp(start)], removed


def build(start: str) -> tuple[bytes, pd.DataFrame, dict]:
    frame, removed = load_sources(start)
    frame = frame.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    text = frame.to_csv(index=False, float_format="%.6f", lineterminator="\n")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as handle:
        handle.write(text.encode())
    return buffer.getvalue(), frame, removed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="1999-01-01", help="first date kept (YYYY-MM-DD)")
    parser.add_argument("--check", action="store_true", help="compare with the bundled file")
    args = parser.parse_args()

    payload, frame, removed = build(args.start)
    spans = frame.groupby("symbol")["date"].agg(["min", "max", "size"])
    print(spans.to_string())
    for what, count in removed.items():
        print(f"removed: {what}: {count}")
    if args.check:
        same = OUT.exists() and OUT.read_bytes() == payload
        print("bundled file is up to date" if same else "bundled file differs from the sources")
        raise SystemExit(0 if same else 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(payload)
    print(f"wrote {OUT} ({len(payload) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
