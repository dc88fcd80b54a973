"""`repro bench` on a few steps: it measures, and writes its table."""
from typer.testing import CliRunner

from repro import bench
from repro.cli_app import app


def test_lstm_flops_count_the_gates():
    model = bench._lstm()
    # 50 steps x (8 x 64 x (2 + 64) + 640) + 128
    assert bench._lstm_flops(model) == 50 * (8 * 64 * 66 + 640) + 128


def test_matmul_peak_is_positive():
    peak = bench.matmul_peak(n=256, repeats=2)
    assert peak["numpy_gflops"] > 0 and peak["tf_gflops"] > 0


def test_bench_writes_its_table(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_MACHINE", "benchbox")
    res = CliRunner().invoke(app, ["bench", "lenet5", "--steps", "2", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (csv,) = (tmp_path / "bench").glob("benchbox-*.csv")
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("model,xla,mixed_precision,batch,sample,samples_per_s")
    assert len(lines) == 3                                  # XLA off and on
    assert all(float(line.split(",")[5]) > 0 for line in lines[1:])
    assert csv.with_suffix(".md").read_text().startswith("# bench: benchbox")


def test_unknown_workload_is_refused():
    res = CliRunner().invoke(app, ["bench", "resnet"])
    assert res.exit_code == 2 and "unknown workload 'resnet'" in res.output
