"""Causal features and forward-looking targets, computed per symbol.

A feature at date t reads only rows of the same symbol dated t or earlier; a test changes
prices after t and checks that nothing at or before t moves. Targets read the future on
purpose: the target at t covers the `horizon` trading days after t.

Features are named `"kind"` or `"kind:window"`, e.g. `"log_return"`, `"rv_cc:21"`:

| kind | needs | value at t |
|---|---|---|
| `log_return` | close | ln(C_t / C_{t-1}) |
| `abs_return` | close | abs(ln(C_t / C_{t-1})) |
| `rv_cc:w` | close | close-to-close volatility, sqrt(mean of r^2 over the last w days) |
| `parkinson:w` | high, low | sqrt(mean(ln(H/L)^2) / (4 ln 2)) over w days (Parkinson 1980) |
| `garman_klass:w` | OHLC | sqrt(mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2)) (Garman & Klass 1980) |
| `momentum:w` | close | ln(C_t / C_{t-w}) |
| `ma_gap:w` | close | ln(C_t / mean(C over the last w days)) |
| `rsi:w` | close | relative strength index with Wilder smoothing, scaled to [-1, 1] |
| `range` | high, low | ln(H_t / L_t) |
| `volume_z:w` | volume | z-score of ln(1 + V_t) against the last w days |
| `log_rv:w` | close | ln(mean of r^2 over the last w days), w >= 1 (HAR: w = 1, 5, 22) |
| `log_parkinson:w` | high, low | ln(mean of the daily Parkinson variance over w days), w >= 1 |
| `log_garman_klass:w` | OHLC | ln(mean of the daily Garman-Klass variance over w days), w >= 1 |
| `log_rogers_satchell:w` | OHLC | ln(mean of the daily Rogers-Satchell variance), w >= 1 |
| `vol_return:w` | close | r_t / sqrt(mean of r^2 over the w days before t) |

Volatility features are daily (not annualized). The `log_*` variance features and
`vol_return` are scale-free: an asset whose returns are c times larger has the same
`vol_return` and log variances shifted by `2 ln c` (see `metazoo.data.variance`, which also
defines the daily proxies, the variance targets `rv:<proxy>` and `log_rv:<proxy>` and the
map from log variance back to variance).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metazoo.data import variance as _variance
from metazoo.validation import check_count

TARGETS = ("return", "variance", "direction")
VARIANCE_TARGETS = _variance.VARIANCE_TARGETS
"""Variance targets in the units learners should use: `rv:<proxy>` and `log_rv:<proxy>`."""


def _returns(g: pd.DataFrame) -> pd.Series:
    return np.log(g["close"]).diff()


def _rolling_mean(values: pd.Series, window: int) -> pd.Series:
    return values.rolling(window, min_periods=window).mean()


def _parkinson(g, w):
    return np.sqrt(_rolling_mean(np.log(g["high"] / g["low"]) ** 2, w) / (4 * np.log(2)))


def _garman_klass(g, w):
    hl = np.log(g["high"] / g["low"]) ** 2
    co = np.log(g["close"] / g["open"]) ** 2
    return np.sqrt(_rolling_mean(0.5 * hl - (2 * np.log(2) - 1) * co, w).clip(lower=0))


def _rsi(g, w):
    change = g["close"].diff()
    gain = change.clip(lower=0).ewm(alpha=1 / w, min_periods=w, adjust=False).mean()
    loss = (-change).clip(lower=0).ewm(alpha=1 / w, min_periods=w, adjust=False).mean()
    total = gain + loss
    return ((gain - loss) / total.where(total > 0)).fillna(0.0).where(gain.notna())


def _volume_z(g, w):
    level = np.log1p(g["volume"])
    rolling = level.rolling(w, min_periods=w)
    std = rolling.std()
    return ((level - rolling.mean()) / std.where(std > 0)).fillna(0.0).where(std.notna())


# kind -> (function(group, window), fields needed, takes a window)
_FEATURES = {
    "log_return": (lambda g, w: _returns(g), ("close",), False),
    "abs_return": (lambda g, w: _returns(g).abs(), ("close",), False),
    "rv_cc": (lambda g, w: np.sqrt(_rolling_mean(_returns(g) ** 2, w)), ("close",), True),
    "parkinson": (_parkinson, ("high", "low"), True),
    "garman_klass": (_garman_klass, ("open", "high", "low", "close"), True),
    "momentum": (lambda g, w: np.log(g["close"] / g["close"].shift(w)), ("close",), True),
    "ma_gap": (lambda g, w: np.log(g["close"] / _rolling_mean(g["close"], w)), ("close",), True),
    "rsi": (_rsi, ("close",), True),
    "range": (lambda g, w: np.log(g["high"] / g["low"]), ("high", "low"), False),
    "volume_z": (_volume_z, ("volume",), True),
    "vol_return": (_variance.vol_normalized_return, ("close",), True),
    **{
        f"log_{proxy}": (
            lambda g, w, proxy=proxy: _variance.log_trailing_variance(g, w, proxy),
            _variance.PROXY_FIELDS[proxy],
            True,
        )
        for proxy in ("parkinson", "garman_klass", "rogers_satchell")
    },
    "log_rv": (
        lambda g, w: _variance.log_trailing_variance(g, w, "squared_return"),
        ("close",),
        True,
    ),
}
_MIN_WINDOW = {  # kinds whose window may be 1 (a single day); others need >= 2
    "log_rv": 1,
    "log_parkinson": 1,
    "log_garman_klass": 1,
    "log_rogers_satchell": 1,
}

DEFAULT_FEATURES = (
    "log_return",
    "rv_cc:5",
    "rv_cc:21",
    "momentum:5",
    "momentum:21",
    "ma_gap:21",
    "rsi:14",
    "parkinson:21",
    "garman_klass:21",
    "volume_z:21",
)


def parse_feature(name: str) -> tuple[str, int | None]:
    """Split `"kind:window"` into its kind and window; check both."""
    kind, _, window = str(name).partition(":")
    if kind not in _FEATURES:
        raise ValueError(f"Unknown feature kind; known: {sorted(_FEATURES)}. Received: {name!r}")
    takes_window = _FEATURES[kind][2]
    if not takes_window:
        if window:
            raise ValueError(f"Feature {kind!r} takes no window. Received: {name!r}")
        return kind, None
    if not window:
        raise ValueError(f"Feature {kind!r} needs a window, e.g. '{kind}:21'. Received: {name!r}")
    least = _MIN_WINDOW.get(kind, 2)
    if not window.isdigit() or int(window) < least:
        raise ValueError(
            f"The window of {kind!r} must be an integer >= {least}. Received: {name!r}"
        )
    return kind, int(window)


_WARMUP = {  # rows before the first value, as a function of the window
    "log_return": lambda w: 1,
    "abs_return": lambda w: 1,
    "rv_cc": lambda w: w,
    "parkinson": lambda w: w - 1,
    "garman_klass": lambda w: w - 1,
    "momentum": lambda w: w,
    "ma_gap": lambda w: w - 1,
    "rsi": lambda w: w,
    "range": lambda w: 0,
    "volume_z": lambda w: w - 1,
    "vol_return": lambda w: w + 1,
    "log_rv": lambda w: w,
    "log_parkinson": lambda w: w - 1,
    "log_garman_klass": lambda w: w - 1,
    "log_rogers_satchell": lambda w: w - 1,
}


def feature_warmup(name: str) -> int:
    """Rows of a symbol before a feature has its first value."""
    kind, window = parse_feature(name)
    return _WARMUP[kind](window)


def feature_fields(name: str) -> tuple[str, ...]:
    """The price fields a feature needs."""
    return _FEATURES[parse_feature(name)[0]][1]


def available_features(frame: pd.DataFrame, features=DEFAULT_FEATURES) -> list[str]:
    """The features of `features` that every symbol of `frame` has the fields for."""
    lacking = set()
    for field in ("open", "high", "low", "close", "volume"):
        if field not in frame.columns or frame.groupby("symbol")[field].count().eq(0).any():
            lacking.add(field)
    return [f for f in features if not set(feature_fields(f)) & lacking]


def compute_features(frame: pd.DataFrame, features=None) -> pd.DataFrame:
    """Causal features of each symbol, on the rows of `frame`.

    Args:
        frame: validated long price frame (see `load_prices`).
        features: feature names (see module docstring). Default: those of
            `DEFAULT_FEATURES` that every symbol has the fields for.

    Returns:
        Frame with `date, symbol` and one float column per feature, in the row order of
        `frame`. The first rows of each symbol are NaN until a feature's window is full.

    Raises:
        ValueError: for an unknown feature or one whose fields a symbol lacks.
    """
    check_sorted(frame)
    names = available_features(frame) if features is None else list(features)
    if not names:
        raise ValueError("features must name at least one feature. Received: features=[]")
    if len(set(names)) != len(names):
        raise ValueError(f"Feature names must be unique. Received: features={names}")
    parsed = {name: parse_feature(name) for name in names}
    for name in names:
        fields = list(feature_fields(name))
        lacking = frame.groupby("symbol")[fields].apply(lambda g: g.isna().all().any())
        if lacking.any():
            raise ValueError(
                f"Feature {name!r} needs {fields}, which symbols {sorted(lacking.index[lacking])} "
                "lack. Choose features those symbols have (see available_features)."
            )
    out = frame[["date", "symbol"]].copy()
    groups = [group for _, group in frame.groupby("symbol", sort=False)]
    for name, (kind, window) in parsed.items():
        function = _FEATURES[kind][0]
        out[name] = pd.concat([function(group, window) for group in groups]).astype("float64")
    return out


def target_names(target: str, horizon: int, cumulative: bool) -> list[str]:
    """Column names of the targets: `return_1 ... return_h` or `return_sum_h` (variance
    targets: `log_rv_garman_klass_1 ...` or `log_rv_garman_klass_mean_h`)."""
    if _variance.parse_variance_target(target):
        return _variance.variance_target_names(target, horizon, cumulative)
    if cumulative:
        return [f"{target}_sum_{horizon}"]
    return [f"{target}_{step}" for step in range(1, horizon + 1)]


def compute_targets(
    frame: pd.DataFrame, target: str = "return", horizon: int = 1, cumulative: bool = False
) -> pd.DataFrame:
    """Forward-looking targets of each symbol: what is forecast at date t.

    Args:
        frame: validated long price frame.
        target: `"return"` (log return), `"variance"` (squared log return, a realized
            variance proxy), `"direction"` (1.0 if the log return is positive, else 0.0),
            or a variance target of `VARIANCE_TARGETS`: `"rv:<proxy>"` (a daily variance
            proxy of `metazoo.data.variance.PROXIES`) or `"log_rv:<proxy>"` (its log).
        horizon: number of trading days ahead, >= 1.
        cumulative: if False, one column per day ahead (`y[:, j]` is day t+j+1); if True,
            one column with the sum over the horizon (the h-day return, the h-day realized
            variance, or the direction of the h-day return); for `rv:` and `log_rv:`
            targets, the *mean* daily variance over the horizon (then its log).

    Returns:
        Frame with `date, symbol` and the target columns; NaN where the future is not in
        `frame` (the last `horizon` rows of each symbol).
    """
    if target not in TARGETS + VARIANCE_TARGETS:
        raise ValueError(
            f"target must be one of {TARGETS + VARIANCE_TARGETS}. Received: target={target!r}"
        )
    horizon = check_count("horizon", horizon)
    check_sorted(frame)
    if target in VARIANCE_TARGETS:
        values = _variance.variance_targets(frame, target, horizon, bool(cumulative))
        out = frame[["date", "symbol"]].copy()
        for column, name in enumerate(target_names(target, horizon, cumulative)):
            out[name] = values[:, column]
        return out
    returns = frame.groupby("symbol", sort=False)["close"].transform(lambda c: np.log(c).diff())
    ahead = pd.concat(
        [
            returns.groupby(frame["symbol"], sort=False).shift(-step)
            for step in range(1, horizon + 1)
        ],
        axis=1,
    ).to_numpy()
    if target == "variance":
        ahead = ahead**2
    if cumulative:
        ahead = ahead.sum(axis=1, keepdims=True)  # NaN if any day ahead is unknown
    values = ahead
    if target == "direction":
        values = np.where(np.isnan(ahead), np.nan, (ahead > 0).astype("float64"))
    out = frame[["date", "symbol"]].copy()
    for column, name in enumerate(target_names(target, horizon, cumulative)):
        out[name] = values[:, column]
    return out


def check_sorted(frame: pd.DataFrame) -> None:
    """Refuse a frame that is not a validated long price frame with rows in date order:
    unique columns, datetime dates, numeric fields, finite positive prices (a field a symbol
    lacks may be empty), volumes >= 0, unique (symbol, date) rows in date order."""
    hint = "pass the frame through metazoo.data.load_prices first"
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"Expected a validated long price frame, a pandas.DataFrame ({hint}). "
            f"Received: {type(frame).__name__}"
        )
    missing = [c for c in ("date", "symbol", "close") if c not in frame.columns]
    if missing:
        raise ValueError(
            "Expected a validated long price frame (see metazoo.data.load_prices). "
            f"Missing columns: {missing}. Received columns: {list(frame.columns)}"
        )
    if frame.columns.duplicated().any():
        raise ValueError(
            f"Column names must be unique; {hint}. Received columns: {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError(f"The price frame has no rows. Received columns: {list(frame.columns)}")
    if not pd.api.types.is_datetime64_any_dtype(frame["date"]):
        raise ValueError(f"Dates must be datetime64; {hint}. Received: {frame['date'].dtype}")
    _check_values(frame, hint)
    if frame.duplicated(["symbol", "date"]).any() or not all(
        d.is_monotonic_increasing for _, d in frame.groupby("symbol", sort=False)["date"]
    ):
        raise ValueError(
            "Rows must be unique and in date order within each symbol; "
            "pass the frame through metazoo.data.load_prices first."
        )


def _check_values(frame: pd.DataFrame, hint: str) -> None:
    for field in [c for c in ("open", "high", "low", "close", "volume") if c in frame.columns]:
        dtype = frame[field].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_complex_dtype(dtype):
            raise ValueError(f"Column {field!r} must be numeric; {hint}. Received: {dtype}")
        values = frame[field].to_numpy(dtype=np.float64)
        present = values[~np.isnan(values)] if field != "close" else values
        low = 0.0 if field == "volume" else np.nextafter(0.0, 1.0)
        if not (np.isfinite(present).all() and (present >= low).all()):
            bad = present[~(np.isfinite(present) & (present >= low))][:3]
            kind = "finite and >= 0" if field == "volume" else "finite and positive"
            raise ValueError(f"Column {field!r} must be {kind}; {hint}. Received: {bad}")
