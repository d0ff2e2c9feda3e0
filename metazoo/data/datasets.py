"""Market data: the bundled data set and loaders that validate a user's own prices.

Every loader returns a *long* frame with one row per (symbol, date) and the columns
`date, symbol, open, high, low, close, volume` (plus any extra columns the input had), sorted
by symbol then date. Only `close` is required; a field that a symbol lacks entirely (for
example WTI has no open, high, low or volume) is left empty and features that need it refuse
that symbol. Values missing here and there follow an explicit policy (`missing=`), and every
row removed or value filled is reported in `frame.attrs["cleaning_report"]` and a warning.
So is everything else the loaders read in a way the file does not spell out: dates written as
`yyyymmdd` numbers, dates with UTC offsets, an adjusted close used in place of the close, and
one-day price jumps that look like an unadjusted split or a data error.
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
LAYOUTS = ("auto", "long", "single", "wide")
ADJUSTED_CLOSE = ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close")
# A one-day close-to-close change beyond these is flagged as a suspected split or data error.
JUMP_UP, JUMP_DOWN = 1.0, -0.5
_COMPRESSIONS = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")
ASSET_CLASSES = ("equity_index", "stock", "currency", "commodity")


class MissingDataWarning(UserWarning):
    """Rows were removed or values filled under the `missing=` policy."""


class PriceJumpWarning(UserWarning):
    """A close moved by more than +100% or -50% in one day: a suspected split or data error."""


class AdjustedPricesWarning(UserWarning):
    """The adjusted close of the input was used as the close (open, high, low scaled alike)."""


@dataclass(eq=False)
class CleaningReport:
    """What validation removed or filled.

    Attributes:
        rows_in: rows received.
        rows_out: rows returned.
        removed: one row per removed input row: `symbol, date, reason`.
        filled: number of values forward-filled, per column.
        unavailable: fields a symbol lacks entirely, `{symbol: [fields]}`.
        jumps: one row per suspected split or data error, a one-day change of the close
            above +100% or below -50%: `symbol, date, previous_close, close, change`
            (the simple return). The rows are kept unchanged.
        notes: how the input was read where the file does not say it (date formats, UTC
            offsets, the adjusted close), one sentence each.
    """

    rows_in: int
    rows_out: int
    removed: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["symbol", "date", "reason"])
    )
    filled: dict = field(default_factory=dict)
    unavailable: dict = field(default_factory=dict)
    jumps: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            columns=["symbol", "date", "previous_close", "close", "change"]
        )
    )
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        """One line: rows in and out, rows removed, values filled, jumps flagged, notes."""
        parts = [f"{self.rows_in} rows in, {self.rows_out} out"]
        if len(self.removed):
            counts = self.removed.groupby(["symbol", "reason"]).size()
            parts += [f"removed {n} of {s} ({r})" for (s, r), n in counts.items()]
        parts += [f"filled {n} values of {c}" for c, n in self.filled.items() if n]
        if len(self.jumps):
            parts.append(f"{len(self.jumps)} suspected split(s) or data error(s) flagged")
        return "; ".join(parts + list(self.notes))


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
    symbol: str | None = None,
    date_column: str = "date",
    missing: str = "raise",
    sort: bool = False,
    min_rows: int | None = None,
) -> pd.DataFrame:
    """Load and validate prices from a CSV path or a DataFrame, in long, single or wide layout.

    Layouts:
        * long: one row per (date, symbol) with `date, symbol, close` and optionally
          `open, high, low, volume`.
        * single: long without a `symbol` column: one instrument, named by `symbol=` or
          after the file. A Yahoo Finance download (`Date, Open, High, Low, Close,
          Adj Close, Volume`) is one.
        * wide: one row per date, one column per symbol holding close prices; or
          two-level columns `(field, symbol)` holding several fields. Columns named like
          price fields (`Open`, `Close`, `Adj Close`, ...) are refused here: they are the
          fields of one instrument, not symbols.

    With `layout="auto"` a frame with a `symbol` column is long, one whose other columns are
    all price fields (`open, high, low, close, adj close, volume`) is single, and any other
    is wide. Column names are matched ignoring case and surrounding spaces; the date may be
    a column or the index.

    Adjusted close: where a long or single frame has an adjusted close (`Adj Close`,
    `adj_close`, `AdjClose`, ...), it becomes `close`, and `open`, `high` and `low` are
    multiplied by the same daily factor `adj close / close`, so that ranges and gaps stay
    consistent with the adjusted series through splits and dividends. Volume is kept as
    given. The raw close is kept in the column `unadjusted_close`. An
    `AdjustedPricesWarning` and the cleaning report say so.

    Dates: `yyyymmdd` numbers or strings (`20200102`, common in exchange and vendor files)
    are read as those dates; other numbers are refused. Dates with UTC offsets (as
    `DataFrame.to_csv` writes tz-aware dates, e.g. `-05:00` and `-04:00` across a
    daylight-saving change) keep their local date and time: the offset is taken to be the
    exchange's own, so each row keeps the exchange's calendar date instead of being moved to
    UTC (midnight in Tokyo stays that day). A tz-aware DataFrame column is read the same
    way. Both are noted in the cleaning report.

    Jumps: a close that rises more than 100% or falls more than 50% from one row to the next
    (an unadjusted split or reverse split, or a data error) raises a `PriceJumpWarning`
    naming the symbol and the day, and is listed in `report.jumps`; the data are kept as
    they are.

    Args:
        source: path to a CSV file (optionally compressed) or a `pandas.DataFrame`.
        layout: `"auto"`, `"long"`, `"single"` or `"wide"`.
        symbol: name of the instrument of a single-instrument frame; by default the file
            name without its extensions (`msft.csv` gives `msft`), or `"ASSET"` for a
            DataFrame.
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
        ValueError: on missing columns, a wide frame of price fields, unparseable, duplicate
            or unsorted dates, numbers that are not `yyyymmdd` dates, dates with and without
            UTC offsets mixed, non-positive prices, infinities, inconsistent highs and lows,
            too few rows, or missing values under `missing="raise"`.
    """
    if isinstance(source, (str, os.PathLike)):
        if not os.path.exists(source):
            raise FileNotFoundError(f"No such price file. Received: source={source!r}")
        frame = pd.read_csv(source)
        default_symbol = _name_of_file(source)
    elif isinstance(source, pd.DataFrame):
        frame = source.copy()
        default_symbol = "ASSET"
    else:
        raise TypeError(
            "source must be a CSV path or a pandas.DataFrame. "
            f"Received: source of type {type(source).__name__}"
        )
    if symbol is None:
        symbol = default_symbol
    elif not isinstance(symbol, str) or not symbol.strip():
        raise TypeError(f"`symbol` expected a non-empty string. Received: symbol={symbol!r}")
    frame = to_long(frame, layout=layout, symbol=symbol, date_column=date_column)
    frame, notes = _use_adjusted_close(frame)
    frame = validate_prices(frame, missing=missing, sort=sort, min_rows=min_rows)
    frame.attrs["cleaning_report"].notes.extend(notes)
    return frame


def _name_of_file(path) -> str:
    """The file name without its extensions: `data/msft.csv.gz` -> `msft`."""
    name = os.path.basename(os.fspath(path))
    for suffix in _COMPRESSIONS:
        name = name.removesuffix(suffix)
    stem, extension = os.path.splitext(name)
    return stem if stem and extension.lower() in (".csv", ".txt", ".tsv") else name


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
    names = set(folded.values()) - {date_column}
    if layout == "auto":
        single = names <= {*FIELDS, *ADJUSTED_CLOSE}
        layout = "long" if "symbol" in names else "single" if single else "wide"
    if layout == "wide":  # columns are symbols: keep their spelling
        _refuse_price_fields_as_symbols(folded, date_column)
        dates = next(c for c, f in folded.items() if f == date_column)
        return _wide_to_long(frame.set_index(dates).rename_axis(date_column), date_column, False)
    if len(set(folded.values())) < len(folded):
        raise ValueError(
            "Column names must be unique ignoring case and surrounding spaces. "
            f"Received columns: {list(frame.columns)}"
        )
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


def _refuse_price_fields_as_symbols(folded: dict, date_column: str) -> None:
    fields = [c for c, f in folded.items() if f in {*FIELDS, *ADJUSTED_CLOSE, "symbol"}]
    if fields:
        raise ValueError(
            "`layout` expected a wide frame with one close-price column per symbol, but "
            f"columns {fields} look like price fields of one instrument. Pass "
            "layout='single' (and symbol=) for one instrument's fields, or layout='long' "
            f"with a 'symbol' column. Received columns: {list(folded)}"
        )


def _use_adjusted_close(frame: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Close, open, high and low on the adjusted close's scale; the raw close kept aside."""
    present = [c for c in frame.columns if c in ADJUSTED_CLOSE]
    if not present:
        return frame, []
    if len(present) > 1:
        raise ValueError(
            f"`source` expected at most one adjusted close column. Received: {present}"
        )
    if "unadjusted_close" in frame.columns:
        raise ValueError(
            "`source` expected no 'unadjusted_close' column beside an adjusted close (the raw "
            f"close is kept under that name). Received columns: {list(frame.columns)}"
        )
    frame = frame.copy()
    adjusted = _parse_numbers(frame.pop(present[0]), present[0])
    raw = _parse_numbers(frame["close"], "close")
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = adjusted / raw
    for column in ("open", "high", "low"):
        if column in frame.columns:
            frame[column] = _parse_numbers(frame[column], column) * factor
    frame["close"] = adjusted
    frame["unadjusted_close"] = raw
    ratio = factor[np.isfinite(factor)]
    span = f" (factor {ratio.min():.4g} to {ratio.max():.4g})" if len(ratio) else ""
    note = (
        f"adjusted close {present[0]!r} used as close{span}; open, high and low multiplied "
        "by the same daily factor adj close / close, volume as given, raw close kept as "
        "'unadjusted_close'"
    )
    warnings.warn(f"Price data: {note}.", AdjustedPricesWarning, stacklevel=3)
    return frame, [note]


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

    See `load_prices` for the checks and arguments (dates, jumps and the cleaning report).
    Returns a new frame; the input is not modified.
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
    frame["date"], date_notes = _parse_dates(frame["date"])
    frame["symbol"] = _parse_symbols(frame["symbol"])
    for column in FIELDS:
        frame[column] = _parse_numbers(frame[column], column)
    frame = _check_order(frame, sort)
    report = CleaningReport(rows_in=len(frame), rows_out=len(frame))
    report.notes = list(date_notes)
    report.unavailable = _unavailable_fields(frame)
    frame = _apply_missing_policy(frame, missing, report)
    _check_values(frame)
    _check_rows(frame, min_rows)
    frame = frame.reset_index(drop=True)
    report.rows_out = len(frame)
    report.jumps = _find_jumps(frame)
    if len(report.removed) or any(report.filled.values()):
        warnings.warn(f"Price data cleaned: {report.summary()}", MissingDataWarning, stacklevel=3)
    if len(report.jumps):
        warnings.warn(_describe_jumps(report.jumps), PriceJumpWarning, stacklevel=3)
    frame.attrs["cleaning_report"] = report
    return frame


def _parse_dates(dates: pd.Series) -> tuple[pd.Series, list]:
    """Dates as naive datetime64[ns], with a note on how they were read where it matters."""
    if dates.isna().any():
        rows = list(np.flatnonzero(dates.isna().to_numpy())[:5])
        raise ValueError(f"Dates must not be empty. Received empty dates at rows {rows}")
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        note = f"dates in time zone {dates.dt.tz} kept as their local date and time"
        return dates.dt.tz_localize(None).astype("datetime64[ns]"), [note]
    if pd.api.types.is_datetime64_dtype(dates.dtype):
        return dates.astype("datetime64[ns]"), []
    if _all_numbers(dates):
        return _parse_yyyymmdd(dates), ["dates read as yyyymmdd"]
    text = dates.astype(str).str.strip()
    if text.str.fullmatch(r"\d{8}").all():
        return _parse_yyyymmdd(text), ["dates read as yyyymmdd"]
    try:
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    except (ValueError, TypeError):  # mixed UTC offsets, or offsets beside naive dates
        parsed = None
    notes = []
    if parsed is None or parsed.dtype == object or isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed, notes = _parse_local_times(text)
    if parsed.isna().any():
        bad = dates[parsed.isna().to_numpy()].head(5)
        raise ValueError(
            "Dates must be parseable. Received unparseable dates "
            f"{dict(zip(bad.index.tolist(), bad.tolist(), strict=True))} (row: value)"
        )
    return parsed.astype("datetime64[ns]"), notes


def _all_numbers(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values.dtype):
        return False
    if pd.api.types.is_numeric_dtype(values.dtype):
        return True
    return values.map(lambda v: isinstance(v, int | float | np.number)).all()


def _parse_yyyymmdd(values: pd.Series) -> pd.Series:
    """Numbers or 8-digit strings like 20200102 as the dates they write."""
    numbers = pd.to_numeric(values, errors="coerce")
    integral = numbers.notna() & (numbers == np.floor(numbers)) & numbers.between(1e7, 1e8 - 1)
    text = numbers.where(integral, 0).astype("int64").astype(str)
    parsed = pd.to_datetime(text.where(integral), format="%Y%m%d", errors="coerce")
    if parsed.isna().any():
        bad = values[parsed.isna()].head(5)
        raise ValueError(
            "`date` expected dates; numbers are read as yyyymmdd dates (20200102 is "
            "2020-01-02). Received numbers that are not such dates "
            f"{dict(zip(bad.index.tolist(), bad.tolist(), strict=True))} (row: value)"
        )
    return parsed


def _parse_local_times(text: pd.Series) -> tuple[pd.Series, list]:
    """Dates written with UTC offsets, each kept at its local (the exchange's) date and time."""
    stamps = [_timestamp(value) for value in text]
    aware = np.array([s is not None and s.tzinfo is not None for s in stamps])
    parsed_ok = np.array([s is not None for s in stamps])
    if aware.any() and not aware[parsed_ok].all():
        naive = text[parsed_ok & ~aware].head(2).tolist()
        with_offset = text[aware].head(2).tolist()
        raise ValueError(
            "`date` expected every date with a UTC offset or none. Received dates with "
            f"offsets {with_offset} and without {naive}"
        )
    offsets = sorted({s.strftime("%z") for s in stamps if s is not None and s.tzinfo})
    local = [pd.NaT if s is None else s.tz_localize(None) if s.tzinfo else s for s in stamps]
    parsed = pd.Series(pd.to_datetime(local), index=text.index)
    shown = ", ".join(f"{o[:3]}:{o[3:]}" for o in offsets)
    note = (
        f"dates with UTC offsets {shown} kept as their local date and time (the offset "
        "taken as the exchange's own), not converted to UTC"
    )
    return parsed, [note] if offsets else []


def _timestamp(value: str):
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        return None
    return None if stamp is pd.NaT else stamp


def _find_jumps(frame: pd.DataFrame) -> pd.DataFrame:
    previous = frame.groupby("symbol", sort=False)["close"].shift(1)
    change = frame["close"] / previous - 1.0
    flagged = (change > JUMP_UP) | (change < JUMP_DOWN)
    jumps = frame.loc[flagged, ["symbol", "date"]].copy()
    jumps["previous_close"] = previous[flagged]
    jumps["close"] = frame.loc[flagged, "close"]
    jumps["change"] = change[flagged]
    return jumps.reset_index(drop=True)


def _describe_jumps(jumps: pd.DataFrame) -> str:
    shown = [
        f"{row.symbol} close {'rose' if row.change > 0 else 'fell'} {abs(row.change):.0%} "
        f"on {row.date:%Y-%m-%d} ({row.previous_close:.6g} -> {row.close:.6g})"
        for row in jumps.head(5).itertuples(index=False)
    ]
    more = f" and {len(jumps) - 5} more" if len(jumps) > 5 else ""
    return (
        "Suspected split or data error (a one-day change above +100% or below -50%): "
        + "; ".join(shown)
        + more
        + ". The rows are kept as they are; see frame.attrs['cleaning_report'].jumps."
    )


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
