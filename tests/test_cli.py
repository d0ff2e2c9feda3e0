import re
from pathlib import Path

import pytest

from metazoo import cli
from tests.conftest import make_prices

ROOT = Path(__file__).resolve().parents[1]


def test_data_lists_the_bundled_universe_grouped_by_class(capsys):
    from metazoo.data import ASSET_CLASSES, universe

    assert cli.main(["data"]) == 0
    out = capsys.readouterr().out
    table = universe()
    headers = [line.split()[0] for line in out.splitlines() if re.fullmatch(r"\w+ \(\d+\)", line)]
    assert headers == list(ASSET_CLASSES)
    sections = re.split(r"\n\n", out)
    for symbol, row in table.iterrows():
        section = next(s for s in sections if s.startswith(f"{row['asset_class']} ("))
        line = next(x for x in section.splitlines() if x.startswith(symbol + " "))
        assert f"{row['first']:%Y-%m-%d}" in line and f"{row['last']:%Y-%m-%d}" in line
        assert f" {row['rows']} " in line and f" {row['fields']} " in line


def test_data_summarizes_a_user_csv(tmp_path, capsys):
    path = tmp_path / "prices.csv"
    make_prices(60, symbols=("AAA", "BBB")).to_csv(path, index=False)
    assert cli.main(["data", "--data", str(path)]) == 0
    out = capsys.readouterr().out
    assert "AAA" in out and "BBB" in out and "SP500" not in out


def test_tasks_summarizes_windows_and_task_split(capsys):
    assert cli.main(["tasks", "--horizon", "5", "--test-start", "2016-01-01"]) == 0
    out = capsys.readouterr().out
    assert "targets ['return_1', 'return_2', 'return_3', 'return_4', 'return_5']" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1]}
    assert rows["held_out_assets"][-1] == "MSFT"
    assert "MSFT" not in rows["train"]


def test_tasks_on_a_user_csv(tmp_path, capsys):
    path = tmp_path / "prices.csv"
    make_prices(300, symbols=("AAA", "BBB", "CCC")).to_csv(path, index=False)
    code = cli.main(
        ["tasks", "--data", str(path), "--test-start", "2020-09-01", "--held-out", "CCC"]
    )
    assert code == 0, capsys.readouterr().err
    assert "CCC" in capsys.readouterr().out


def test_bad_input_exits_with_a_message_not_a_traceback(tmp_path, capsys):
    path = tmp_path / "prices.csv"
    frame = make_prices(50)
    frame.loc[3, "close"] = -1.0
    frame.to_csv(path, index=False)
    assert cli.main(["data", "--data", str(path)]) == 2
    assert "Prices must be positive" in capsys.readouterr().err
    assert cli.main(["tasks", "--held-out", "BITCOIN"]) == 2
    assert "Unknown held_out ['BITCOIN']" in capsys.readouterr().err
    assert cli.main(["tasks", "--test-symbols", "BITCOIN"]) == 2  # the former name of the flag
    assert "Unknown held_out ['BITCOIN']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["tasks", "--target", "price"])
    assert cli.main(["run", "--held-out", "BITCOIN", "--output", str(tmp_path)]) == 2
    assert "held_out ['BITCOIN'] are not among the run's symbols" in capsys.readouterr().err
    assert cli.main(["run", "--targets", "price"]) == 2
    assert "targets expected tokens among" in capsys.readouterr().err


def test_ci_runs_the_readme_test_command_exactly():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
    assert any(c.endswith("metazoo run") for c in commands)


def test_help_answers_without_loading_tensorflow():
    import subprocess
    import sys

    code = (
        "import contextlib, io, sys\n"
        "from metazoo import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--help'])\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
