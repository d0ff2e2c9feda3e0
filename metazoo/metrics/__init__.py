"""Forecast metrics: errors, directional accuracy and (rank) information coefficients."""

from metazoo.metrics.forecast import SCORERS, get_scorer, hit_rate, ic, mae, mse, rank_ic

__all__ = ["SCORERS", "get_scorer", "hit_rate", "ic", "mae", "mse", "rank_ic"]
