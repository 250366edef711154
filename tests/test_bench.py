"""fingercount bench: real TFLite models (made here by TensorFlow) through the real interpreter.

No timing thresholds: latency depends on the machine. The tests check that the records are
complete and consistent (p50 <= p90 <= p99, fps = 1000 / mean, sizes match the files).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main as cli
from tests.conftest import HANDS, ROOT

FIELDS = ("bytes", "init_ms", "first_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "fps",
          "threads", "rss_mb", "model", "precision")


def _tf():
    try:
        import tensorflow as tf
    except ImportError:
        pytest.fail("these tests make their .tflite models with TensorFlow: "
                    "pip install -e '.[converter]' (tensorflow-cpu)", pytrace=False)
    return tf


@pytest.fixture(autouse=True)
def whole_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests time the whole-frame pipeline (preprocess -> invoke, as for the digit model or
    a bare .tflite) with a tiny finger model; the hand-stage pipeline has its own test below."""
    monkeypatch.setenv("FINGERCOUNT_HANDS__ENABLED", "false")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small finger-count package (fp32/fp16/int8, uint8 I/O for int8) and a .tflite with an
    unusual signature (two inputs of other dtypes and sizes, three outputs), like the
    MediaPipe models users may want to compare with ours."""
    tf = _tf()
    root = tmp_path_factory.mktemp("bench-models")
    tf.keras.utils.set_random_seed(0)
    size = 32
    inp = tf.keras.Input((size, size, 3))
    x = tf.keras.layers.Rescaling(1 / 127.5, -1)(inp)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = tf.keras.layers.DepthwiseConv2D(3, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    out = tf.keras.layers.Dense(6, activation="softmax")(x)
    model = tf.keras.Model(inp, out)
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(8):
            yield [rng.integers(0, 255, (1, size, size, 3), endpoint=True).astype(np.float32)]

    pkg = root / "tiny-fingers"
    pkg.mkdir()
    variants = {}
    for prec in ("fp32", "fp16", "int8"):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if prec == "fp16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif prec == "int8":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = rep
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.uint8
            conv.inference_output_type = tf.uint8
        data = conv.convert()
        name = f"tiny-fingers_{prec}.tflite"
        (pkg / name).write_bytes(data)
        variants[prec] = {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (pkg / "model.json").write_text(json.dumps({
        "format": 1, "name": "tiny-fingers", "version": "0.0.1", "task": "finger-count",
        "labels": [str(i) for i in range(6)],
        "input": {"height": size, "width": size, "channels": 3, "color": "rgb", "range": [0, 255]},
        "variants": variants, "retrainable": None}))

    @tf.function(input_signature=[tf.TensorSpec((1, 50, 40, 3), tf.float32),
                                  tf.TensorSpec((1, 7), tf.int32)])
    def odd(img, ids):
        w = tf.constant(np.random.default_rng(1).random((3, 5), dtype=np.float32))
        feat = tf.reduce_mean(img, axis=[1, 2])
        emb = tf.matmul(feat, w)
        return {"landmarks": tf.tanh(emb) * tf.cast(tf.reduce_sum(ids), tf.float32),
                "presence": tf.sigmoid(tf.reduce_sum(emb, axis=1, keepdims=True)),
                "handedness": tf.nn.softmax(emb[:, :2])}

    conv = tf.lite.TFLiteConverter.from_concrete_functions([odd.get_concrete_function()], odd)
    odd_path = root / "hand_landmark_like.tflite"
    odd_path.write_bytes(conv.convert())
    models_dir = root / "models"
    models_dir.mkdir()
    shutil.copytree(pkg, models_dir / "tiny-fingers")
    return {"package": pkg, "odd": odd_path, "models_dir": models_dir}


def _run(argv: list[str]) -> int:
    return cli(argv)


def check_record(r: dict) -> None:
    for k in FIELDS:
        assert k in r, f"record lacks {k}: {sorted(r)}"
    assert r["min_ms"] <= r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert r["p50_ms"] > 0 and r["init_ms"] > 0 and r["first_ms"] > 0
    assert r["fps"] == pytest.approx(1000.0 / r["mean_ms"], rel=1e-9)
    assert r["runs"] >= 10
    assert r["bare_p50_ms"] > 0 and "overhead_pct" in r


def test_bench_every_installed_model_and_precision(tiny_models, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = _run(["bench", "--models-dir", str(tiny_models["models_dir"]), "--threads", "1,2",
               "--runs", "20", "--warmup", "2", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    recs = doc["records"]
    assert sorted((r["precision"], r["threads"]) for r in recs) == \
        sorted((p, t) for p in ("int8", "fp16", "fp32") for t in (1, 2))
    pkg = tiny_models["package"]
    for r in recs:
        check_record(r)
        assert r["model"] == "tiny-fingers"
        assert r["bytes"] == (pkg / f"tiny-fingers_{r['precision']}.tflite").stat().st_size
        want = "uint8" if r["precision"] == "int8" else "float32"
        assert r["inputs"] == [{"name": r["inputs"][0]["name"], "shape": [1, 32, 32, 3], "dtype": want}]
    m = doc["machine"]
    from edge.runtime.interpreter import interpreter_backend

    assert m["runtime"] == interpreter_backend()[1] and m["runtime_version"] == interpreter_backend()[2]
    assert m["python"] == ".".join(str(v) for v in sys.version_info[:3])
    assert m["cores"] >= 1 and m["cpu"]
    assert isinstance(m["xnnpack"]["enabled"], bool) and "DELEGATE" in m["xnnpack"]["how"]
    assert "governor" in m and "pi_model" in m
    table = capsys.readouterr().out
    assert "p50 ms" in table and "Runtime:" in table
    assert sum(1 for line in table.splitlines() if line.startswith("tiny-fingers")) == 6


def test_bench_any_tflite_with_an_unusual_signature(tiny_models, tmp_path):
    out = tmp_path / "odd.json"
    assert _run(["bench", str(tiny_models["odd"]), "--runs", "15", "--threads", "1",
                 "--json", str(out)]) == 0
    (r,) = json.loads(out.read_text())["records"]
    check_record(r)
    assert r["model"] == "hand_landmark_like" and r["precision"] == "fp32"
    assert sorted((i["shape"], i["dtype"]) for i in r["inputs"]) == \
        [([1, 7], "int32"), ([1, 50, 40, 3], "float32")]
    assert sorted(o["shape"][-1] for o in r["outputs"]) == [1, 2, 5]


def test_markdown_and_plot(tiny_models, tmp_path):
    md, png = tmp_path / "b.md", tmp_path / "b.png"
    assert _run(["bench", str(tiny_models["package"]), "--precision", "int8", "--threads", "1,2",
                 "--runs", "10", "--markdown", str(md), "--plot", str(png)]) == 0
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| tiny-fingers")]
    assert len(rows) == 2 and all("| int8 |" in row for row in rows)
    assert "Runtime:" in text and "XNNPACK" in text and "CPU governor" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_plot_without_matplotlib_is_one_clear_line(tiny_models, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    rc = _run(["bench", str(tiny_models["odd"]), "--runs", "10", "--plot", str(tmp_path / "x.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("fingercount: error: --plot needs matplotlib")
    assert not (tmp_path / "x.png").exists()


def test_data_adds_accuracy_and_agreement_with_fp32(tiny_models, tmp_path):
    data = tmp_path / "data"
    n = 0
    for lab in ("0", "1", "2", "7"):  # 7 is not one of the model's labels: not counted
        (data / lab).mkdir(parents=True)
        for p in sorted((HANDS / lab).glob("*.JPG"))[:3]:
            shutil.copy(p, data / lab / p.name)
            n += lab != "7"
    out = tmp_path / "acc.json"
    assert _run(["bench", str(tiny_models["package"]), "--runs", "10", "--threads", "1",
                 "--data", str(data), "--json", str(out)]) == 0
    recs = {r["precision"]: r for r in json.loads(out.read_text())["records"]}
    assert recs["fp32"]["agreement_fp32"] == 1.0
    # the same figure computed independently with the runtime's Classifier
    from edge.runtime.classifier import Classifier
    from edge.runtime.package import load_package
    from edge.runtime.preprocess import read_image

    pkg = load_package(tiny_models["package"])
    preds = {}
    for prec in ("fp32", "int8"):
        clf = Classifier(pkg, prec, 1)
        preds[prec] = [(clf.labels[int(np.argmax(clf.classify(read_image(str(p)))[0]))], lab)
                       for lab in ("0", "1", "2") for p in sorted((data / lab).glob("*.JPG"))]
    for prec in ("fp32", "int8"):
        assert recs[prec]["n_images"] == n
        assert recs[prec]["accuracy"] == pytest.approx(np.mean([a == b for a, b in preds[prec]]))
    assert recs["int8"]["agreement_fp32"] == pytest.approx(
        np.mean([a[0] == b[0] for a, b in zip(preds["int8"], preds["fp32"])]))


@pytest.mark.parametrize("make", ["missing", "garbage", "truncated"])
def test_bad_target_is_one_line(tmp_path, capsys, make):
    p = tmp_path / "bad.tflite"
    if make == "garbage":
        p.write_bytes(b"\x18\x00\x00\x00TFL3" + bytes(range(256)) * 4)
    elif make == "truncated":
        p.write_bytes(b"\x18\x00\x00\x00TFL3")
    rc = _run(["bench", str(p), "--runs", "5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("fingercount: error: ")
    assert "bad.tflite" in err[0]


def test_unknown_model_names_the_installed_ones(tiny_models, capsys):
    rc = _run(["bench", "no-such-model", "--models-dir", str(tiny_models["models_dir"])])
    err = capsys.readouterr().err
    assert rc == 2 and "no-such-model" in err and "tiny-fingers" in err


def test_edge_bench_never_imports_tensorflow():
    code = ("import sys, edge.bench, edge.bench_report, edge.machine, edge.commands.bench\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_pipeline_bench_through_the_real_pipeline_and_broker(tiny_models, tmp_path, broker, monkeypatch):
    import time

    import paho.mqtt.client as mqtt

    monkeypatch.setenv("FINGERCOUNT_DEVICE_ID", "bench-dev")
    monkeypatch.setenv("FINGERCOUNT_PUBLISH__MAX_HZ", "100000")  # every frame, to count them

    got: list[dict] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-test-sub")
    sub.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    sub.connect(broker.host, broker.port)
    sub.subscribe("fingercount/bench-dev/prediction", qos=0)
    sub.loop_start()
    try:
        out = tmp_path / "pipe.json"
        time.sleep(0.3)  # let the subscription settle
        rc = _run(["bench", "--pipeline", "--model", str(tiny_models["package"]), "--frames", "40",
                   "--warmup", "3", "--threads", "1", "--precision", "int8",
                   "--mqtt", f"{broker.host}:{broker.port}", "--state-dir", str(tmp_path / "state"),
                   "--json", str(out)])
        assert rc == 0
        deadline = time.monotonic() + 5
        while len(got) < 43 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    doc = json.loads(out.read_text())
    assert doc["kind"] == "pipeline" and doc["machine"]["runtime"]
    (r,) = doc["records"]
    assert r["frames"] == 40 and r["threads"] == 1 and r["precision"] == "int8"
    assert r["frame_shape"] == [480, 640, 3]  # replay frames come camera-sized (config 640x480)
    assert r["ratio"] == pytest.approx(r["pipeline_fps"] / r["invoke_fps"])
    assert r["pipeline_fps"] == pytest.approx(r["frames"] / r["seconds"])
    for s in ("capture", "preprocess", "invoke", "smooth", "result"):
        assert 0 <= r[f"{s}_ms"] <= r["total_ms"]
    assert r["invoke_ms"] > 0 and r["invoke_fps"] > 0
    # the pipeline's invoke stage and the raw invoke loop keep separate keys
    assert r["invoke_p50_ms"] <= r["invoke_p90_ms"] and r["raw_invoke_p50_ms"] > 0
    assert r["invoke_fps"] == pytest.approx(1000.0 / r["raw_invoke_mean_ms"])
    assert r["head"] is False and r["model_id"] == "tiny-fingers@0.0.1/int8"
    assert r["mqtt"] == f"{broker.host}:{broker.port}"
    assert r["payloads"] == 40 and r["publish_max_hz"] == 100000
    assert len(got) == 43  # every timed and warm-up frame was published
    assert {"seq", "label", "count", "confidence", "scores", "timing_ms"} <= set(got[-1])
    assert set(got[-1]["scores"]) == {str(i) for i in range(6)}


def test_pipeline_bench_builds_payloads_at_the_daemons_rate(tiny_models, tmp_path):
    """Like the daemon (publish.max_hz, 10 by default), not one JSON document per frame."""
    out = tmp_path / "pipe.json"
    assert _run(["bench", "--pipeline", "--model", str(tiny_models["package"]), "--frames", "300",
                 "--threads", "1", "--precision", "int8", "--state-dir", str(tmp_path / "state"),
                 "--json", str(out)]) == 0
    (r,) = json.loads(out.read_text())["records"]
    assert r["publish_max_hz"] == 10
    assert r["payloads"] <= 10 * r["seconds"] + 1 and r["payloads"] < r["frames"]
    # pipeline and raw-invoke blocks alternate (one per 100 frames here), so machine load hits both
    b = r["ratio_blocks"]
    assert r["blocks"] == 3 and 0 < b["min"] <= b["median"] <= b["max"]


def _bench_subprocess(argv: list[str], tmp_path: Path) -> dict:
    """bench in a fresh Python, where the runtime is not loaded yet (as for a user)."""
    out = tmp_path / "fresh.json"
    subprocess.run([sys.executable, "-m", "edge.cli", "bench", *argv, "--json", str(out)],
                   check=True, cwd=ROOT, capture_output=True)
    return json.loads(out.read_text())


def test_first_case_does_not_pay_for_loading_the_runtime(tiny_models, tmp_path):
    """The same case measured first and second in one process: loading the runtime (~17 MB
    here) and numpy's lazily imported parts (~2 MB) must not land in the first row."""
    pkg = str(tiny_models["package"])
    doc = _bench_subprocess([pkg, pkg, "--precision", "fp32", "--threads", "1",
                             "--runs", "10", "--warmup", "1"], tmp_path)
    first, second = doc["records"]
    assert (first["model"], first["precision"]) == (second["model"], second["precision"])
    assert first["rss_mb"] <= second["rss_mb"] + 1.0, (first["rss_mb"], second["rss_mb"])


def _broken_models_dir(tiny_models: dict, root: Path) -> Path:
    """tiny-fingers (good), zero (its int8 file emptied) and badjson (model.json not JSON)."""
    d = root / "models"
    shutil.copytree(tiny_models["package"], d / "tiny-fingers")
    shutil.copytree(tiny_models["package"], d / "zero")
    meta = json.loads((d / "zero" / "model.json").read_text())
    (d / "zero" / "model.json").write_text(json.dumps({**meta, "name": "zero"}))
    (d / "zero" / "tiny-fingers_int8.tflite").write_bytes(b"")
    (d / "badjson").mkdir()
    (d / "badjson" / "model.json").write_text('{"format": 1,')
    return d


def test_a_broken_case_is_reported_and_the_others_are_measured(tiny_models, tmp_path, capsys):
    models = _broken_models_dir(tiny_models, tmp_path)
    out, md = tmp_path / "b.json", tmp_path / "b.md"
    rc = _run(["bench", "--models-dir", str(models), "--threads", "1", "--runs", "10",
               "--warmup", "1", "--json", str(out), "--markdown", str(md)])
    cap = capsys.readouterr()
    assert rc == 2
    doc = json.loads(out.read_text())
    assert sorted((r["model"], r["precision"]) for r in doc["records"]) == \
        [("tiny-fingers", p) for p in ("fp16", "fp32", "int8")] + [("zero", "fp16"), ("zero", "fp32")]
    for r in doc["records"]:
        check_record(r)
    errs = {e["model"]: e for e in doc["errors"]}
    assert sorted(errs) == ["badjson", "zero"]
    assert errs["zero"]["precision"] == "int8" and "sha256" in errs["zero"]["error"]
    assert errs["zero"]["file"] == str(models / "zero" / "tiny-fingers_int8.tflite")
    assert errs["badjson"]["precision"] is None and "not valid JSON" in errs["badjson"]["error"]
    assert errs["badjson"]["file"] == str(models / "badjson" / "model.json")
    table = cap.out.split("failed (not measured):")
    assert len(table) == 2 and sum(line.startswith(("tiny-fingers", "zero"))
                                   for line in table[0].splitlines()) == 5
    assert "zero int8" in table[1] and "tiny-fingers_int8.tflite" in table[1] and "badjson" in table[1]
    assert "zero int8" in md.read_text() and "badjson/model.json" in md.read_text()
    assert cap.err.strip().splitlines()[-1] == \
        "fingercount: error: 2 bench case(s) could not be measured (see 'failed' above)"


def test_one_named_broken_target_is_still_one_line(tiny_models, tmp_path, capsys):
    models = _broken_models_dir(tiny_models, tmp_path)
    out = tmp_path / "b.json"
    rc = _run(["bench", "zero", "--models-dir", str(models), "--precision", "int8",
               "--runs", "10", "--json", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("fingercount: error: zero: ")
    assert "sha256" in err[0] and not out.exists()


@pytest.mark.parametrize("flag", ["--json", "--markdown"])
def test_a_failed_report_write_leaves_no_temp_file(tiny_models, tmp_path, capsys, flag):
    target = tmp_path / "ev"
    target.mkdir()  # a directory where the report file should go
    rc = _run(["bench", str(tiny_models["odd"]), "--runs", "10", "--warmup", "1", flag, str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith(f"fingercount: error: cannot write {target}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev"] and not any(target.iterdir())


def _drawn_bars(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every figure bench saves, kept for inspection of what it drew."""
    from matplotlib.figure import Figure

    figs: list = []
    save = Figure.savefig

    def keep(self, *a, **k):
        figs.append(self)
        return save(self, *a, **k)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figs


def _whiskers(fig) -> tuple[str, list[tuple[float, float, float]]]:
    """(y label, [(bar height, whisker bottom, whisker top)]) of a saved bench plot."""
    from matplotlib.container import BarContainer

    (ax,) = fig.axes
    got = []
    for bars in (c for c in ax.containers if isinstance(c, BarContainer)):
        segs = bars.errorbar.lines[2][0].get_segments()
        for rect, seg in zip(bars.patches, segs):
            got.append((rect.get_height(), float(min(seg[:, 1])), float(max(seg[:, 1]))))
    return ax.get_ylabel(), sorted(got)


def test_plot_whiskers_go_from_p50_up_to_p90(tiny_models, tmp_path, monkeypatch):
    figs = _drawn_bars(monkeypatch)
    out = tmp_path / "b.json"
    assert _run(["bench", str(tiny_models["package"]), "--threads", "1", "--runs", "30",
                 "--warmup", "2", "--json", str(out), "--plot", str(tmp_path / "b.png")]) == 0
    recs = json.loads(out.read_text())["records"]
    label, got = _whiskers(figs[-1])
    assert "bar p50" in label and "p90" in label
    want = sorted((r["p50_ms"], r["p50_ms"], r["p90_ms"]) for r in recs)
    assert len(got) == 3 and all(g == pytest.approx(w) for g, w in zip(got, want))


def test_pipeline_report_describes_the_machine_as_the_invoke_report(tiny_models, tmp_path,
                                                                     monkeypatch, capsys):
    """Same header lines (CPU, cores, OS, Python, runtime and version, XNNPACK, governor) in
    both text reports, and the pipeline plot draws what its axis says."""
    figs = _drawn_bars(monkeypatch)
    out = tmp_path / "p.json"
    assert _run(["bench", "--pipeline", "--model", str(tiny_models["package"]), "--frames", "100",
                 "--warmup", "2", "--threads", "1", "--precision", "int8",
                 "--state-dir", str(tmp_path / "state"), "--json", str(out),
                 "--plot", str(tmp_path / "p.png")]) == 0
    pipe_head = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert _run(["bench", str(tiny_models["package"]), "--precision", "int8", "--threads", "1",
                 "--runs", "10"]) == 0
    inv_head = capsys.readouterr().out.split("\n\n")[0].splitlines()
    from edge.runtime.interpreter import interpreter_backend

    _, name, version = interpreter_backend()
    for head in (pipe_head, inv_head):
        assert [line.split(":")[0] for line in head] == ["CPU", "OS", "Runtime", "CPU governor"]
        assert head[2].startswith(f"Runtime: {name} {version}; XNNPACK on (")
        assert f"Python {sys.version.split()[0]}" in head[1] and "cores" in head[0]
    assert pipe_head[:2] == inv_head[:2]
    (r,) = json.loads(out.read_text())["records"]
    label, got = _whiskers(figs[-1])
    assert label.startswith("pipeline latency per frame") and "bar p50" in label
    assert got == [pytest.approx((r["total_p50_ms"], r["total_p50_ms"], r["total_p90_ms"]))]
    assert r["total_p90_ms"] >= r["total_p50_ms"]


def test_pipeline_row_says_it_runs_the_users_head(tmp_path, capsys):
    """Like the daemon, --pipeline runs a retrained head in --state-dir; the row says so."""
    from edge.runtime.classifier import Head
    from edge.runtime.package import load_package

    root = ROOT / "models" / "fingers-mobilenet"
    state = tmp_path / "state"
    Head.load(load_package(root).file_path("head")).save(state / "heads" / "fingers-mobilenet" / "head.npz")
    out = tmp_path / "p.json"
    assert _run(["bench", "--pipeline", "--model", str(root), "--frames", "20", "--warmup", "1",
                 "--threads", "1", "--precision", "int8", "--state-dir", str(state),
                 "--json", str(out)]) == 0
    (r,) = json.loads(out.read_text())["records"]
    assert r["head"] is True and r["model_id"].endswith("+head")
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("fingers-mobilenet")]
    assert len(rows) == 1 and rows[0].startswith("fingers-mobilenet+head ")


def _table_lines(out: str) -> list[str]:
    """The table and what follows it: from its header row on (the machine lines and the camera
    line above it name the machine and a path, whose length is not the table's)."""
    lines = out.split("\n\n", 1)[1].splitlines()
    return lines[next(i for i, ln in enumerate(lines) if ln.startswith("model ")):]


def test_the_console_table_fits_100_columns_and_wide_has_the_rest(tmp_path, capsys):
    """The shipped models with accuracy columns: the default table fits a 100-column terminal;
    --wide (or --verbose) shows every column and the timing check's figures."""
    argv = ["bench", "--threads", "1", "--runs", "5", "--warmup", "1", "--data", str(HANDS),
            "--state-dir", str(tmp_path / "state")]
    assert _run(argv) == 0
    out = capsys.readouterr().out
    lines = _table_lines(out)
    assert lines and max(len(ln) for ln in lines) <= 100, max(lines, key=len)
    assert sum(ln.startswith("fingers-mobilenet ") for ln in lines) == 3
    assert "XNNPACK" in lines[0] and "accuracy" in lines[0] and "init ms" not in lines[0]
    timing = [ln for ln in lines if ln.startswith("Timing check: within ")]
    assert len(timing) == 1 and "range" not in out and "bare invoke loop" not in out
    assert _run([*argv, "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "init ms" in wide and "warm-up ms" in wide and "RSS Δ MB" in wide
    assert "bench timing loop vs a bare invoke loop" in wide and "range " in wide


def test_the_pipeline_report_says_which_camera_it_read(tiny_models, tmp_path, capsys):
    base = ["bench", "--pipeline", "--model", str(tiny_models["package"]), "--frames", "20",
            "--warmup", "1", "--threads", "1", "--precision", "int8", "--state-dir", str(tmp_path / "s")]
    assert _run(base) == 0
    out = capsys.readouterr().out
    assert f"camera: replay:{HANDS}@0 (default: the bundled hand photos; --camera SPEC)" in out
    assert max(len(ln) for ln in _table_lines(out)) <= 100
    assert _run([*base, "--camera", f"replay:{HANDS / '3'}@0"]) == 0
    out = capsys.readouterr().out
    assert f"\ncamera: replay:{HANDS / '3'}@0\n" in out


def test_pipeline_bench_behind_the_hand_stage_times_tracking_on_and_off(tmp_path, capsys, monkeypatch):
    """The default finger counter: locate (palm detection, skipped while tracking), landmarks,
    count; one record per tracking setting, on the bundled clip (a hand, the empty wall, a hand)."""
    monkeypatch.delenv("FINGERCOUNT_HANDS__ENABLED")
    out = tmp_path / "hands.json"
    assert _run(["bench", "--pipeline", "--model", "fingers-landmarks", "--frames", "68", "--warmup", "0",
                 "--threads", "1", "--state-dir", str(tmp_path / "state"), "--json", str(out)]) == 0
    on, off = json.loads(out.read_text())["records"]
    assert (on["tracking"], off["tracking"]) == (True, False)
    for r in (on, off):
        assert r["frame_shape"] == [480, 640, 3] and r["camera"].endswith("epsrc-set1.mp4@0")
        assert 0.8 <= r["hand_found"] < 1.0  # the clip's 8 frames of empty wall have no hand
        assert r["ratio"] == pytest.approx(r["pipeline_fps"] / r["invoke_fps"])
        assert r["detect_ms"] >= 0 and r["landmarks_ms"] > 0 and r["count_ms"] > 0
        assert set(r["bare_ms"]) == {"detect", "landmarks", "count"}
        assert r["xnnpack"]["enabled"] is True
    # tracking skips palm detection on most frames; without it every frame is detected
    assert on["detections_per_frame"] < 0.4 and off["detections_per_frame"] >= 1.0
    assert on["tracked"] > 0.7 and off["tracked"] == 0.0
    table = capsys.readouterr().out
    assert "track" in table and "lmk ms" in table
    rows = table[table.index("\nmodel "):].splitlines()[1:]
    assert max(len(ln) for ln in rows) <= 100, max(rows, key=len)
