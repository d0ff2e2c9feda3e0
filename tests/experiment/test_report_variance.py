"""The variance sections of report.md, the terminal table, and the per-fold and per-class
tables, on a tiny fake run."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from metazoo.experiment import breakdown, plots, report, scoring
from metazoo.experiment.run import RunResult
from tests.experiment.test_report_plots import HELD, fake_predictions, fake_result

CLASSES = {"AAA": "equity", "BBB": "currency", "CCC": "equity"}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return fake_result(tmp_path_factory.mktemp("variance_run"))


@pytest.fixture(scope="module")
def text(result):
    return report.markdown(result, {target: [] for target in result.config.targets})


def _section(text, heading):
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _table_rows(section, first_column):
    """Cells of the first Markdown table of `section` whose header starts `first_column`."""
    block = section[section.index(f"| {first_column} |") :].split("\n\n")[0]
    lines = block.strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    return pd.DataFrame(rows, columns=header)


def test_report_has_a_variance_section_per_horizon(text):
    one = _section(text, "## Target: variance (1 day)")
    five = _section(text, "## Target: variance:5 (mean daily variance over 5 days)")
    for section in (one, five):
        table = _table_rows(section, "eval_set")
        assert {"qlike", "mse_log", "dm_p_har", "dm_p_garch", "in_mcs", "mcs_p"} <= set(table)
        assert set(table["in_mcs"]) <= {"yes", "no"}
        assert "model confidence set holds" in section and "inside the noise" in section
        assert "qlike per fold" in section and "qlike per asset class" in section
    assert "| var1_breach |" in one and "| vt_vol_ratio |" in one
    assert "var1_breach" not in five and "scored on the 1-day target only" in five


def test_qlike_is_marked_where_dm_says_it_is_significant(result, text):
    board = result.leaderboard
    for target, heading in [
        ("variance", "## Target: variance (1 day)"),
        ("variance:5", "## Target: variance:5"),
    ]:
        table = _table_rows(_section(text, heading), "eval_set")
        rows = board[board["target"] == target]
        assert len(table) == len(rows)
        for cell, (_, row) in zip(table["qlike"], rows.iterrows(), strict=True):
            assert cell.rstrip("*+") == f"{row['qlike']:.4g}"
            assert ("*" in cell) == (row["dm_p_har"] < 0.05)
            assert ("+" in cell) == (row["dm_p_garch"] < 0.05)
        assert table["qlike"].str.contains(r"\*").any()  # the fake has significant learners


def test_a_copy_of_har_is_not_marked_and_is_called_noise(tmp_path):
    predictions = fake_predictions()
    copy = predictions[predictions["model"] == "har_rv"].assign(model="har_copy")
    predictions = pd.concat([predictions, copy], ignore_index=True)
    first = fake_result(tmp_path)
    board, strategies = scoring.score(predictions, first.config)
    result = RunResult(first.config, predictions, board, strategies, tmp_path, 1.0)
    text = report.markdown(result, {target: [] for target in result.config.targets})
    for heading in ("## Target: variance (1 day)", "## Target: variance:5"):
        section = _section(text, heading)
        table = _table_rows(section, "eval_set").set_index(["eval_set", "model"])
        har = table.xs("har_rv", level="model")["qlike"].str.rstrip("+")
        copy = table.xs("har_copy", level="model")["qlike"]
        assert not copy.str.contains(r"\*").any()
        assert (copy.str.rstrip("+") == har).all()
        named = re.findall(r"Significantly below `har_rv` \(DM p < 0.05\): ([^;]*);", section)
        assert named and not any("`har_copy`" in sentence for sentence in named)


def test_terminal_table_shows_errors_tests_and_var(result):
    for target in ("variance", "variance:5"):
        table = report.leaderboard_table(result.leaderboard, target)
        assert list(table.columns[:8]) == [
            "eval_set", "model", "kind", "qlike", "mse_log", "dm_p_har", "dm_p_garch", "in_mcs"
        ]  # fmt: skip
        assert ("var1_breach" in table) == (target == "variance")
        assert ("var1_kupiec_p" in table) == (target == "variance")


@pytest.mark.parametrize(("target", "metric"), [("return", "r2_oos"), ("variance", "qlike")])
def test_per_class_rows_add_up_and_one_group_is_the_leaderboard(result, target, metric):
    predictions = result.predictions[result.predictions["target"] == target]
    scores = breakdown.group_scores(predictions, CLASSES, metric, n_bootstrap=200)
    assert set(scores["group"]) == {"equity", "currency"}
    assert set(scores.loc[scores["eval_set"] == HELD, "group"]) == {"equity"}  # CCC only
    n_obs = scores.groupby(["eval_set", "model"])["n_obs"].sum()
    expected = predictions.groupby(["eval_set", "model"]).size()
    pd.testing.assert_series_equal(n_obs.sort_index(), expected.sort_index(), check_names=False)
    n_tasks = scores.groupby(["eval_set", "model"])["n_tasks"].sum()
    tasks = predictions.groupby(["eval_set", "model"])["task"].nunique()
    assert (n_tasks.sort_index() == tasks.sort_index()).all()
    assert (
        (scores["low"] <= scores["value"] + 1e-12) | (scores["model"] == "historical_mean")
    ).all()
    whole = breakdown.group_scores(predictions, {s: "all" for s in CLASSES}, metric, n_bootstrap=50)
    board = result.leaderboard[result.leaderboard["target"] == target]
    merged = whole.merge(board, on=["eval_set", "model"])
    assert len(merged) == len(board[board[metric].notna()])
    assert np.allclose(merged["value"], merged[metric])
    wide = breakdown.wide_table(scores)
    assert list(wide.columns) == ["eval_set", "model", "currency", "equity"]
    tasks_row = wide[(wide["eval_set"] == "later_periods") & (wide["model"] == "(tasks)")]
    assert tasks_row[["currency", "equity"]].astype(int).sum(axis=1).item() == 6


def test_group_scores_refuse_a_symbol_without_a_group(result):
    with pytest.raises(ValueError, match=r"`groups` expected a group for every symbol.*CCC"):
        breakdown.group_scores(result.predictions, {"AAA": "x", "BBB": "y"}, "r2_oos")


def test_qlike_intervals_hold_the_leaderboard_value(result):
    predictions = result.predictions[result.predictions["target"] == "variance:5"]
    intervals = plots.task_intervals(predictions, "qlike", n_bootstrap=300)
    board = result.leaderboard[result.leaderboard["target"] == "variance:5"]
    merged = intervals.merge(board, on=["eval_set", "model"])
    assert (merged["low"] <= merged["qlike"]).all() and (merged["qlike"] <= merged["high"]).all()


def test_the_variance_leaderboard_chart_shows_qlike_best_on_top(result):
    import matplotlib.pyplot as plt

    board = result.leaderboard[result.leaderboard["target"] == "variance:5"]
    predictions = result.predictions[result.predictions["target"] == "variance:5"]
    fig = plots.leaderboard_chart(board, predictions, "variance:5")
    try:
        for ax, eval_set in zip(fig.axes, ["later_periods", HELD], strict=True):
            assert ax.get_xlabel().startswith("qlike (variance:5, mean daily variance over 5")
            labels = [t.get_text() for t in ax.get_yticklabels()]
            rows = board[board["eval_set"] == eval_set].sort_values("qlike")
            assert labels[-1] == rows["model"].iloc[0]  # the top bar is the lowest QLIKE
            assert {t.get_text() for t in ax.texts} == {f"{v:.3g}" for v in rows["qlike"]}
    finally:
        plt.close(fig)
