"""bench's options and its run as a whole: what it refuses up front, what a bad target among
several does, the time cap, when the machine is described, and that reports survive a
closed stdout. Real models (tests' tiny package, the shipped ones) through the real interpreter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from edge import bench
from edge.cli import config_overrides, parse_host_port
from edge.cli import main as cli
from edge.errors import FingercountError
from tests.conftest import MODELS, ROOT

FP32 = MODELS / "fingers-cnn" / "fingers-cnn_fp32.tflite"
INT8 = MODELS / "fingers-cnn" / "fingers-cnn_int8.tflite"


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fingercount: error: "), err
    return err[0]


@pytest.mark.parametrize("name, want", [
    ("p.xyz", "must end in one of"), ("noext", "must end in one of"), ("adir", "is a directory")])
def test_a_bad_plot_path_is_refused_before_measuring(tmp_path, capsys, name, want) -> None:
    (tmp_path / "adir").mkdir()
    out = tmp_path / "b.json"
    rc = cli(["bench", str(FP32), "--runs", "10", "--json", str(out), "--plot", str(tmp_path / name)])
    assert rc == 2 and want in _one_error(capsys)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["adir"]


def test_one_bad_target_among_several_is_a_failed_row(tmp_path, capsys) -> None:
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    out = tmp_path / "b.json"
    rc = cli(["bench", str(FP32), str(empty), "no-such-model", str(tmp_path / "gone.tflite"),
              "--models-dir", str(MODELS), "--threads", "1", "--runs", "10", "--json", str(out)])
    cap = capsys.readouterr()
    assert rc == 2
    doc = json.loads(out.read_text())
    assert [r["file"] for r in doc["records"]] == [str(FP32)]
    why = {e["model"]: e["error"] for e in doc["errors"]}
    assert sorted(why) == ["empty", "gone", "no-such-model"]
    assert "file is empty" in why["empty"] and "not found" in why["no-such-model"]
    assert "no such file" in why["gone"]
    assert "failed (not measured):" in cap.out and cap.out.count("fingers-cnn_fp32") >= 1
    assert cap.err.strip().splitlines()[-1] == \
        "fingercount: error: 3 bench case(s) could not be measured (see 'failed' above)"


def test_paths_are_taken_as_they_are(tmp_path, capsys) -> None:
    (tmp_path / "dir.tflite").mkdir()
    assert cli(["bench", str(tmp_path / "dir.tflite"), "--runs", "10"]) == 2
    assert _one_error(capsys).endswith("has no model.json, so it is not a model package")
    noext = tmp_path / "noext"
    noext.write_bytes(FP32.read_bytes())
    out = tmp_path / "b.json"
    assert cli(["bench", str(noext), "--runs", "10", "--threads", "1", "--json", str(out)]) == 0
    (r,) = json.loads(out.read_text())["records"]
    assert r["model"] == "noext" and r["precision"] == "fp32"


def test_a_name_is_resolved_as_model_resolves_it(tmp_path, capsys, monkeypatch) -> None:
    # a package copied to a folder of another name is found by the name inside it, also
    # when the working directory has a folder of that name
    shutil.copytree(MODELS / "fingers-cnn", tmp_path / "models" / "fc-copy")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fingers-cnn").mkdir()
    out = tmp_path / "b.json"
    assert cli(["bench", "fingers-cnn", "--models-dir", str(tmp_path / "models"), "--precision", "int8",
                "--threads", "1", "--runs", "10", "--json", str(out)]) == 0
    (r,) = json.loads(out.read_text())["records"]
    assert (r["model"], r["precision"]) == ("fingers-cnn", "int8")
    assert r["file"] == str(tmp_path / "models" / "fc-copy" / INT8.name)


@pytest.mark.parametrize("argv, want", [
    (["--threads", "65"], "--threads: each count must be 1..64"),
    (["--threads", "99999999999999999999"], "--threads: each count must be 1..64"),
    (["--pipeline", "--model", str(FP32), "--data", "x"], "--data and --runs belong to the invoke"),
    (["--pipeline", "--model", str(FP32), "--runs", "5"], "--data and --runs belong to the invoke"),
    (["--pipeline", "--model", str(INT8), "--precision", "fp32"], "is int8"),
    ([str(FP32), "--model", "fingers-cnn"], "either as arguments or with --model"),
])
def test_conflicting_options_are_one_line(tmp_path, capsys, argv, want) -> None:
    assert cli(["bench", *argv, "--state-dir", str(tmp_path / "s")]) == 2
    assert want in _one_error(capsys)


def test_a_case_stays_within_its_time_cap_overhead_check_included() -> None:
    data = FP32.read_bytes()
    bench.bench_model(data, 1, runs=5, warmup=1)  # load the runtime outside the clock
    t0 = time.monotonic()
    rec = bench.bench_model(data, 1, runs=10 ** 7, warmup=10 ** 6, max_seconds=1.0)
    took = time.monotonic() - t0
    assert took < 1.5, took
    assert rec["cut"] and rec["runs"] < 10 ** 7 and rec["max_seconds"] == 1.0


def test_a_cut_case_says_so_in_its_row() -> None:
    from edge.bench_report import invoke_rows, record_notes

    rec = {"model": "m", "precision": "fp32", "threads": 1, "p50_ms": 1.0, "p90_ms": 1.0,
           "p99_ms": 1.0, "mean_ms": 1.0, "fps": 1000.0, "runs": 12, "runs_asked": 100, "cut": True,
           "max_seconds": 30.0, "overhead_pct": None}
    _, (row,) = invoke_rows([rec])
    assert "12 (cut)" in row
    assert record_notes(rec) == ["m fp32 x1: stopped by the 30 s cap per case (12 of 100 runs; "
                                 "no overhead check)"]


def test_the_load_average_is_the_one_before_the_first_case(tmp_path, monkeypatch) -> None:
    cases = []
    real = bench.bench_model
    monkeypatch.setattr(bench, "bench_model", lambda *a, **k: cases.append(1) or real(*a, **k))
    monkeypatch.setattr(os, "getloadavg", lambda: (float(len(cases)), 0.0, 0.0))
    out = tmp_path / "b.json"
    assert cli(["bench", str(FP32), "--runs", "10", "--threads", "1,2", "--json", str(out)]) == 0
    assert cases and json.loads(out.read_text())["machine"]["loadavg_1m"] == 0.0


@pytest.mark.parametrize("cmd", [["bench", str(FP32), "--runs", "10", "--threads", "1"],
                                 ["eval", "--model", str(FP32), "--data", str(ROOT / "tests" / "data" / "hands")]])
def test_reports_are_written_when_stdout_is_closed(tmp_path, cmd) -> None:
    out = tmp_path / "r.json"
    r, w = os.pipe()
    os.close(r)  # like `| true` that has already exited
    try:
        p = subprocess.run([sys.executable, "-m", "edge.cli", *cmd, "--json", str(out)], cwd=ROOT,
                           stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert "Traceback" not in p.stderr, p.stderr
    assert json.loads(out.read_text())


@pytest.mark.parametrize("text, want", [
    ("broker", ("broker", None)), ("broker:1884", ("broker", 1884)), ("[::1]:18854", ("::1", 18854)),
    ("[::1]", ("::1", None)), ("::1", ("::1", None)), ("10.0.0.2:1", ("10.0.0.2", 1))])
def test_mqtt_host_port(text, want) -> None:
    assert parse_host_port(text) == want


@pytest.mark.parametrize("text", [":18854", "[::1]:", "[::1", "[]:1883", "h:0", "h:x"])
def test_a_bad_mqtt_address_is_refused(text) -> None:
    with pytest.raises(FingercountError, match="--mqtt"):
        parse_host_port(text)


def test_mqtt_ipv6_reaches_the_config() -> None:
    import argparse

    o = config_overrides(argparse.Namespace(command="run", mqtt="[::1]:18854"))
    assert o["mqtt"] == {"host": "::1", "port": 18854}
