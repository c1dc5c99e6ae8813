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


def test_bench_models_group_runs_each_library_in_its_own_process(capsys, monkeypatch):
    from fastrnn import benchmark, benchmark_models
    monkeypatch.setattr(benchmark_models.time, "sleep", lambda s: None)   # no pauses here
    monkeypatch.setattr(benchmark, "torch_available", lambda: False)     # fastrnn only
    assert main(["bench", "--models", "a", "f", "--repeats", "1", "--model-epochs", "2",
                 "--backends", "fastrnn"]) == 0
    out = capsys.readouterr().out
    assert "(a) tutorial, Adam" in out and "(f) many-to-many, T=20" in out
    assert "GFLOP/s in training" in out          # (f) reports its arithmetic rate


def test_step_flops_count_the_recurrence_and_the_output():
    from fastrnn.benchmark_models import step_flops
    # (g): B=32, T=20, D=1, H=64, U=10: forward 2*32*20*(1*64 + 64*64) + 2*32*64*10
    assert step_flops("g") == 3 * (2 * 32 * 20 * (64 + 64 * 64) + 2 * 32 * 64 * 10)
