"""``python -m fastrnn bench``: the subcommand runs (tiny, fast settings)."""
import pytest

from fastrnn.__main__ import main

FAST = ["--repeats", "1", "--min-time", "0.0005", "--gemm-size", "32", "--fit-epochs", "2"]


def test_bench_subcommand_prints_the_table_and_the_tutorial_figures(capsys):
    assert main(["bench", "--shapes", "S1", "latency", "--backends", "fastrnn", "reference"]
                + FAST) == 0
    out = capsys.readouterr().out
    assert "python -m fastrnn bench --shapes S1 latency" in out       # the exact command
    assert "machine:" in out and "date:" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("S1 ", "latency "))]
    ops = {(r[0], r[1]) for r in rows if r[-2].endswith("x")}       # vs reference ratio
    assert ops == {("S1", "rnn_forward"), ("S1", "rnn_backward"), ("S1", "train_step"),
                   ("S1", "predict"), ("latency", "predict")}
    assert "GEMM peak" in out
    assert "tutorial fit: 2 epochs" in out
    assert "Sequential.predict of one tutorial sequence" in out


def test_bench_threads_option_reports_what_it_did(capsys):
    assert main(["bench", "--shapes", "latency", "--backends", "fastrnn", "--threads", "1"]
                + FAST) == 0
    assert "threads:" in capsys.readouterr().out


def test_bench_rejects_an_unknown_shape(capsys):
    with pytest.raises(SystemExit) as info:
        main(["bench", "--shapes", "S9"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
