"""Market data: the bundled data set and loaders that validate a user's own prices.

Every loader returns a *long* frame with one row per (symbol, date) and the columns
`date, symbol, open, high, low, close, volume` (plus any extra columns the input had), sorted
by symbol then date. Only `close` is required; a field that a symbol lacks entirely (for
example WTI has no open, high, low or volume) is left empty and features that need it refuse
that symbol. Values missing here and there follow an explicit policy (`missing=`), and every
row removed or value filled is reported in `frame.attrs["cleaning_report"]` and a warning.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pandas as pd

PRICE_FIELDS = ("open", "high", "low", "close")
FIELDS = (*PRICE_FIELDS, "volume")
COLUMNS = ("date", "symbol", *FIELDS)
MISSING_POLICIES = ("raise", "drop", "ffill")
ASSET_CLASSES = ("equity_index", "stock", "currency", "commodity")


class MissingDataWarning(UserWarning):
    """Rows were removed or values filled under the `missing=` policy."""


@dataclass(eq=False)
class CleaningReport:
    """What validation removed or filled.

    Attributes:
        rows_in: rows received.
        rows_out: rows returned.
        removed: one row per removed input row: `symbol, date, reason`.
        filled: number of values forward-filled, per column.
        unavailable: fields a symbol lacks entirely, `{symbol: [fields]}`.
    """

    rows_in: int
    rows_out: int
    removed: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["symbol", "date", "reason"])
    )
    filled: dict = field(default_factory=dict)
    unavailable: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line: rows in and out, rows removed per symbol and reason, values filled."""
        parts = [f"{self.rows_in} rows in, {self.rows_out} out"]
        if len(self.removed):
            counts = self.removed.groupby(["symbol", "reason"]).size()
            parts += [f"removed {n} of {s} ({r})" for (s, r), n in counts.items()]
        parts += [f"filled {n} values of {c}" for c, n in self.filled.items() if n]
        return "; ".join(parts)


def load_markets(symbols=None, classes=None, start=None, end=None, fields=None) -> pd.DataFrame:
    """Daily prices of the real instruments shipped inside the package.

    22 series in four asset classes (`ASSET_CLASSES`): equity indices (S&P 500, NASDAQ,
    Dow Jones since 1885, NYSE Composite, CRSP value-weighted, MSCI Switzerland, NYSE Arca
    Steel), single stocks (Microsoft, Apple, Alphabet, GE, IBM, Mobil), currencies (five US
    dollar exchange rates of the 1980s, the sterling effective exchange rate) and commodities
    (WTI crude oil, gold, silver), each over its own span between 1885 and 2023. Most are
    close only; `universe()` lists each one's fields, span, rows, source and license, and
    `metazoo/data/_bundled/MARKETS.md` says how the bundle was made. Nothing is downloaded.

    Args:
        symbols: symbols to keep (default all), a string or a list.
        classes: asset classes to keep (default all), a string or a list of
            `ASSET_CLASSES`.
        start: first date kept (inclusive), anything `pandas.Timestamp` accepts.
        end: last date kept (inclusive).
        fields: keep only series that have all these price fields, e.g. `"OHLC"`,
            `"OHLCV"` or `["open", "high", "low", "close"]` (default: any series).

    Returns:
        Long frame `date, symbol, open, high, low, close, volume`, sorted by symbol then
        date; fields a series lacks are empty.

    Raises:
        ValueError: for an unknown symbol, class or field, or a selection with no rows.

    Example:
    >>> prices = load_markets(classes="currency", start="1985-01-01")
    >>> sorted(prices["symbol"].unique())[:3]
    ['CADUSD', 'CHFUSD', 'DEMUSD']
    """
    table = universe()
    wanted = _select_universe(table, symbols=symbols, classes=classes, fields=fields)
    path = resources.files("metazoo.data").joinpath("_bundled/markets.csv.gz")
    with resources.as_file(path) as csv_path:
        raw = pd.read_csv(csv_path, compression="gzip")
    raw = raw[raw["symbol"].isin(wanted)]
    frame = validate_prices(raw)
    return select_dates(frame, start, end).reset_index(drop=True)


def universe() -> pd.DataFrame:
    """The bundled series, one row each, indexed by symbol.

    Returns:
        Frame indexed by `symbol` with columns `name`, `asset_class` (one of
        `ASSET_CLASSES`), `region`, `currency` (of the quote; `"index"` for an index
        without one), `fields` (`"OHLCV"`, `"OHLC"` or `"close"`), `first` and `last`
        (Timestamps), `rows`, `source` (package and data set), `license` and `notes` (what
        the build changed).

    Example:
    >>> table = universe()
    >>> table.loc["MSFT", ["asset_class", "fields"]].tolist()
    ['stock', 'OHLCV']
    """
    path = resources.files("metazoo.data").joinpath("_bundled/universe.csv")
    with resources.as_file(path) as csv_path:
        table = pd.read_csv(csv_path, keep_default_na=False, parse_dates=["first", "last"])
    return table.set_index("symbol")


def _as_list(value, name: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple, set, np.ndarray, pd.Index)) or not all(
        isinstance(v, str) for v in values
    ):
        raise TypeError(
            f"`{name}` expected a string or a list of strings. Received: {name}={value!r}"
        )
    if not len(values):
        raise ValueError(f"`{name}` expected at least one entry. Received: {name}={value!r}")
    return list(values)


def _parse_fields(fields) -> list[str]:
    if isinstance(fields, str) and fields and fields.lower() not in FIELDS:
        letters = {"O": "open", "H": "high", "L": "low", "C": "close", "V": "volume"}
        if set(fields.upper()) <= set(letters):
            return [letters[c] for c in fields.upper()]
    wanted = [f.lower() for f in _as_list(fields, "fields")]
    unknown = sorted(set(wanted) - set(FIELDS))
    if unknown:
        raise ValueError(
            f"`fields` expected price fields of {list(FIELDS)} or letters of 'OHLCV'. "
            f"Received: fields={fields!r}"
        )
    return wanted


def _select_universe(table: pd.DataFrame, symbols=None, classes=None, fields=None) -> list:
    """Symbols of `table` that pass every filter given (raise on unknown names)."""
    keep = pd.Series(True, index=table.index)
    if symbols is not None:
        wanted = _as_list(symbols, "symbols")
        unknown = sorted(set(wanted) - set(table.index))
        if unknown:
            raise ValueError(
                f"`symbols` expected symbols of the bundled data {sorted(table.index)}. "
                f"Unknown symbols received: symbols={unknown}"
            )
        keep &= table.index.isin(wanted)
    if classes is not None:
        wanted = _as_list(classes, "classes")
        unknown = sorted(set(wanted) - set(ASSET_CLASSES))
        if unknown:
            raise ValueError(
                f"`classes` expected asset classes of {list(ASSET_CLASSES)}. "
                f"Received: classes={unknown}"
            )
        keep &= table["asset_class"].isin(wanted)
    if fields is not None:
        wanted = _parse_fields(fields)
        has = table["fields"].map(_fields_of)
        keep &= has.map(lambda have: set(wanted) <= have)
    if not keep.any():
        raise ValueError(
            "No bundled series matches all of symbols, classes and fields. "
            f"Received: symbols={symbols!r}, classes={classes!r}, fields={fields!r}"
        )
    return list(table.index[keep])


def _fields_of(code: str) -> set:
    return {"close"} if code == "close" else set(_parse_fields(code))


def select_dates(frame: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Rows of a long frame with `start <= date <= end` (either bound optional)."""
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= (frame["date"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (frame["date"] <= pd.Timestamp(end)).to_numpy()
    if not keep.any():
        raise ValueError(f"No rows between start and end. Received: start={start}, end={end}")
    return frame[keep]


def load_prices(
    source,
    *,
    layout: str = "auto",
    symbol: str = "ASSET",
    date_column: str = "date",
    missing: str = "raise",
    sort: bool = False,
    min_rows: int | None = None,
) -> pd.DataFrame:
    """Load and validate prices from a CSV path or a DataFrame, in long or wide layout.

    Layouts:
        * long: one row per (date, symbol) with `date, symbol, close` and optionally
          `open, high, low, volume`.
        * single: long without a `symbol` column (one instrument, named by `symbol=`).
        * wide: one row per date, one column per symbol holding close prices; or
          two-level columns `(field, symbol)` holding several fields.

    Column names are matched case-insensitively; the date may be a column or the index.

    Args:
        source: path to a CSV file (optionally compressed) or a `pandas.DataFrame`.
        layout: `"auto"`, `"long"`, `"single"` or `"wide"`.
        symbol: name given to the instrument of a single-instrument frame.
        date_column: name of the date column.
        missing: what to do with missing values: `"raise"` (default); `"drop"` every row
            with a missing value; or `"ffill"`: a row with no prices at all is a day without
            trading and takes the previous close as open, high, low and close and a volume
            of 0, while rows missing only some fields are dropped. Removed rows and filled
            values are reported.
        sort: sort dates within each symbol instead of refusing unsorted input.
        min_rows: refuse symbols with fewer rows than this after cleaning.

    Returns:
        Validated long frame (see module docstring); `frame.attrs["cleaning_report"]` holds
        a `CleaningReport`.

    Raises:
        ValueError: on missing columns, unparseable or duplicate dates, unsorted dates,
            non-positive prices, infinities, inconsistent highs and lows, too few rows, or
            missing values under `missing="raise"`.
    """
    if isinstance(source, (str, os.PathLike)):
        if not os.path.exists(source):
            raise FileNotFoundError(f"No such price file. Received: source={source!r}")
        frame = pd.read_csv(source)
    elif isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        raise TypeError(
            "source must be a CSV path or a pandas.DataFrame. "
            f"Received: source of type {type(source).__name__}"
        )
    frame = to_long(frame, layout=layout, symbol=symbol, date_column=date_column)
    return validate_prices(frame, missing=missing, sort=sort, min_rows=min_rows)


def to_long(frame: pd.DataFrame, layout="auto", symbol="ASSET", date_column="date"):
    """Reshape a frame of any supported layout to long (no validation beyond columns)."""
    if layout not in ("auto", "long", "single", "wide"):
        raise ValueError(
            f"layout must be 'auto', 'long', 'single' or 'wide'. Received: layout={layout!r}"
        )
    if frame.columns.duplicated().any():
        raise ValueError(f"Column names must be unique. Received columns: {list(frame.columns)}")
    if isinstance(frame.columns, pd.MultiIndex):
        return _wide_to_long(frame, date_column, multi=True)
    folded = {c: str(c).strip().lower() for c in frame.columns}
    date_column = date_column.lower()
    if date_column not in folded.values():
        index_name = str(frame.index.name).strip().lower()
        if not isinstance(frame.index, pd.DatetimeIndex) and index_name != date_column:
            raise ValueError(
                f"Prices need a {date_column!r} column or a DatetimeIndex. Received columns "
                f"{list(frame.columns)} and an index of type {type(frame.index).__name__}"
            )
        frame = frame.rename_axis(date_column).reset_index()
        folded[date_column] = date_column
    if layout == "auto":
        names = set(folded.values()) - {date_column}
        layout = "long" if "symbol" in names else "single" if names <= set(FIELDS) else "wide"
    if layout == "wide":  # columns are symbols: keep their spelling
        dates = next(c for c, f in folded.items() if f == date_column)
        return _wide_to_long(frame.set_index(dates).rename_axis(date_column), date_column, False)
    frame = frame.rename(columns=folded)
    if layout == "single":
        if "symbol" in frame.columns:
            raise ValueError("layout='single' takes a frame without a 'symbol' column.")
        frame.insert(1, "symbol", symbol)
    missing = [c for c in (date_column, "symbol", "close") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"A long price frame needs columns {[date_column, 'symbol', 'close']}. "
            f"Missing: {missing}. Received columns: {list(frame.columns)}"
        )
    return frame.rename(columns={date_column: "date"})


def _wide_to_long(frame: pd.DataFrame, date_column: str, multi: bool) -> pd.DataFrame:
    if multi:
        fields = {str(f).strip().lower() for f in frame.columns.get_level_values(0)}
        if "close" not in fields:
            raise ValueError(
                "Two-level columns must be (field, symbol) with a 'close' field. "
                f"Received fields: {sorted(fields)}"
            )
        frame = frame.rename(columns=lambda c: str(c).strip().lower(), level=0)
        long = frame.rename_axis(index="date", columns=["field", "symbol"]).stack(
            "symbol", future_stack=True
        )
        long = long.reset_index()
        long.columns.name = None
    else:
        long = frame.rename_axis(index="date", columns="symbol").stack(future_stack=True)
        long = long.rename("close").reset_index()
    long["symbol"] = long["symbol"].astype(str)
    # A wide frame pads symbols that start late or end early with empty cells; those are
    # not observations, so only gaps inside a symbol's own span count as missing values.
    span = long.groupby("symbol")["close"].transform(
        lambda s: s.notna().cummax() & s[::-1].notna().cummax()[::-1]
    )
    return long[span.astype(bool)].reset_index(drop=True)


def validate_prices(frame, *, missing="raise", sort=False, min_rows=None) -> pd.DataFrame:
    """Validate a long price frame and apply the missing-value policy.

    See `load_prices` for the checks and arguments. Returns a new frame; the input is not
    modified.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(
            f"missing must be one of {MISSING_POLICIES}. Received: missing={missing!r}"
        )
    frame = frame.rename(columns=lambda c: str(c).strip().lower()).copy()
    absent = [c for c in ("date", "symbol", "close") if c not in frame.columns]
    if absent:
        raise ValueError(
            f"Price frame needs columns ['date', 'symbol', 'close']. Missing: {absent}. "
            f"Received columns: {list(frame.columns)}"
        )
    if frame.columns.duplicated().any():
        raise ValueError(
            "Column names must be unique ignoring case and surrounding spaces. "
            f"Received columns: {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError(f"The price frame has no rows. Received columns: {list(frame.columns)}")
    frame = frame.reindex(columns=[*COLUMNS, *[c for c in frame.columns if c not in COLUMNS]])
    frame["date"] = _parse_dates(frame["date"])
    frame["symbol"] = _parse_symbols(frame["symbol"])
    for column in FIELDS:
        frame[column] = _parse_numbers(frame[column], column)
    frame = _check_order(frame, sort)
    report = CleaningReport(rows_in=len(frame), rows_out=len(frame))
    report.unavailable = _unavailable_fields(frame)
    frame = _apply_missing_policy(frame, missing, report)
    _check_values(frame)
    _check_rows(frame, min_rows)
    frame = frame.reset_index(drop=True)
    report.rows_out = len(frame)
    if len(report.removed) or any(report.filled.values()):
        warnings.warn(f"Price data cleaned: {report.summary()}", MissingDataWarning, stacklevel=3)
    frame.attrs["cleaning_report"] = report
    return frame


def _parse_dates(dates: pd.Series) -> pd.Series:
    if dates.isna().any():
        rows = list(np.flatnonzero(dates.isna().to_numpy())[:5])
        raise ValueError(f"Dates must not be empty. Received empty dates at rows {rows}")
    parsed = pd.to_datetime(dates, errors="coerce", format="mixed")
    if parsed.isna().any():
        bad = dates[parsed.isna()].head(5)
        raise ValueError(
            "Dates must be parseable. Received unparseable dates "
            f"{dict(zip(bad.index.tolist(), bad.tolist(), strict=True))} (row: value)"
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _parse_symbols(symbols: pd.Series) -> pd.Series:
    if symbols.isna().any():
        rows = list(np.flatnonzero(symbols.isna().to_numpy())[:5])
        raise ValueError(f"Symbols must not be empty. Received empty symbols at rows {rows}")
    return symbols.astype(str)


def _parse_numbers(values: pd.Series, column: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        sample = values[bad].head(5)
        raise ValueError(
            f"Column {column!r} must be numeric. Received non-numeric values "
            f"{dict(zip(sample.index.tolist(), sample.tolist(), strict=True))} (row: value)"
        )
    numbers = numbers.astype("float64")
    infinite = np.isinf(numbers.to_numpy())
    if infinite.any():
        raise ValueError(
            f"Column {column!r} must be finite. Received infinities at rows "
            f"{list(np.flatnonzero(infinite)[:5])}"
        )
    return numbers


def _check_order(frame: pd.DataFrame, sort: bool) -> pd.DataFrame:
    duplicated = frame.duplicated(["symbol", "date"], keep=False)
    if duplicated.any():
        sample = frame.loc[duplicated, ["symbol", "date"]].drop_duplicates().head(5)
        raise ValueError(
            "Each (symbol, date) must appear once. Received duplicates: "
            + ", ".join(f"{s} {d:%Y-%m-%d}" for s, d in sample.itertuples(index=False))
        )
    if sort:
        return frame.sort_values(["symbol", "date"], kind="stable")
    increasing = frame.groupby("symbol", sort=False)["date"].apply(
        lambda d: d.is_monotonic_increasing
    )
    if not increasing.all():
        raise ValueError(
            "Dates must increase within each symbol (pass sort=True to sort them). "
            f"Received unsorted dates for symbols {sorted(increasing.index[~increasing])}"
        )
    return frame.sort_values(["symbol", "date"], kind="stable")


def _unavailable_fields(frame: pd.DataFrame) -> dict:
    empty = frame.groupby("symbol", sort=True)[list(FIELDS)].apply(lambda g: g.isna().all())
    if empty["close"].any():
        raise ValueError(
            "Every symbol needs close prices. Received symbols without any: "
            f"{sorted(empty.index[empty['close']])}"
        )
    return {s: [f for f in FIELDS if row[f]] for s, row in empty.iterrows() if row.any()}


def _apply_missing_policy(frame: pd.DataFrame, missing: str, report: CleaningReport):
    expected = frame[list(FIELDS)].notna().copy()
    for symbol, fields in report.unavailable.items():
        expected.loc[frame["symbol"] == symbol, fields] = True
    gaps = ~expected
    if not gaps.any().any():
        return frame
    if missing == "raise":
        where = frame.loc[gaps.any(axis=1), ["symbol", "date"]].head(5)
        counts = {c: int(n) for c, n in gaps.sum().items() if n}
        raise ValueError(
            "Missing values found; choose a policy with missing='drop' or 'ffill'. "
            f"Received missing values per column {counts}, first at "
            + ", ".join(f"{s} {d:%Y-%m-%d}" for s, d in where.itertuples(index=False))
        )
    if missing == "ffill":
        # A row with none of its prices is a day without trading: it takes the previous
        # close for every price and a volume of 0. Rows missing only some fields are dropped.
        price_gaps = gaps[list(PRICE_FIELDS)]
        empty_row = price_gaps.eq(~expected[list(PRICE_FIELDS)] | price_gaps).all(axis=1)
        empty_row &= price_gaps.any(axis=1)
        previous = frame["close"].groupby(frame["symbol"], sort=False).ffill()
        fill = empty_row & previous.notna()
        report.filled = {}
        for column in FIELDS:
            rows = fill & gaps[column]
            frame.loc[rows, column] = 0.0 if column == "volume" else previous[rows]
            report.filled[column] = int(rows.sum())
        gaps = gaps & frame[list(FIELDS)].isna()
    drop = gaps.any(axis=1)
    if drop.any():
        removed = frame.loc[drop, ["symbol", "date"]].copy()
        removed["reason"] = "missing " + gaps[drop].apply(
            lambda row: "+".join(c for c in FIELDS if row[c]), axis=1
        )
        report.removed = removed.reset_index(drop=True)
    return frame[~drop]


def _check_values(frame: pd.DataFrame) -> None:
    prices = frame[list(PRICE_FIELDS)]
    bad = (prices <= 0).any(axis=1)
    if bad.any():
        sample = frame.loc[bad, ["symbol", "date", *PRICE_FIELDS]].head(3)
        raise ValueError(f"Prices must be positive. Received:\n{sample.to_string(index=False)}")
    if (frame["volume"] < 0).any():
        sample = frame.loc[frame["volume"] < 0, ["symbol", "date", "volume"]].head(3)
        raise ValueError(f"Volume must be >= 0. Received:\n{sample.to_string(index=False)}")
    tol = 1e-9 * prices.abs().max(axis=1)
    body_high = prices[["open", "close"]].max(axis=1)
    body_low = prices[["open", "close"]].min(axis=1)
    inconsistent = (frame["high"] < body_high - tol) | (frame["low"] > body_low + tol)
    inconsistent |= frame["high"] < frame["low"] - tol
    if inconsistent.any():
        sample = frame.loc[inconsistent, ["symbol", "date", *PRICE_FIELDS]].head(3)
        raise ValueError(
            "Each row needs low <= open, close <= high. Received "
            f"{int(inconsistent.sum())} inconsistent rows, e.g.:\n{sample.to_string(index=False)}"
        )


def _check_rows(frame: pd.DataFrame, min_rows: int | None) -> None:
    if frame.empty:
        raise ValueError("The price frame has no rows left after cleaning.")
    if min_rows is None:
        return
    sizes = frame.groupby("symbol").size()
    short = sizes[sizes < min_rows]
    if len(short):
        raise ValueError(
            f"Every symbol needs at least min_rows={min_rows} rows. Received: {short.to_dict()}"
        )
