"""Unusual .tflite files through bench and eval: how their precision is named, models that are
not classifiers, dynamic input sizes and integer index inputs. Models made here by TensorFlow,
run by the real interpreter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main as cli
from tests.conftest import HANDS
from tests.test_bench import _tf


@pytest.fixture(scope="session")
def odd_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tf = _tf()
    root = tmp_path_factory.mktemp("odd-models")
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    out: dict[str, Path] = {}

    def save(name: str, conv) -> None:
        out[name] = root / f"{name}.tflite"
        out[name].write_bytes(conv.convert())

    def keras(build) -> object:
        inp = tf.keras.Input((16, 16, 3))
        return tf.keras.Model(inp, build(inp))

    # a classifier with enough weights (> 1024 per tensor) for dynamic-range quantization
    clf = keras(lambda x: tf.keras.layers.Dense(6, activation="softmax")(
        tf.keras.layers.Dense(8, activation="relu")(tf.keras.layers.Flatten()(x))))

    def rep():
        for _ in range(4):
            yield [rng.integers(0, 255, (1, 16, 16, 3), endpoint=True).astype(np.float32)]

    for name, ops in (("fp32", None), ("dynamic", None), ("int8fio", tf.lite.OpsSet.TFLITE_BUILTINS_INT8),
                      ("int16x8", tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8)):
        conv = tf.lite.TFLiteConverter.from_keras_model(clf)
        if name != "fp32":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if ops is not None:
            conv.representative_dataset = rep
            conv.target_spec.supported_ops = [ops]
        save(name, conv)
    save("one_class", tf.lite.TFLiteConverter.from_keras_model(keras(lambda x: tf.keras.layers.Dense(
        1, activation="sigmoid")(tf.keras.layers.GlobalAveragePooling2D()(x)))))
    save("image_out", tf.lite.TFLiteConverter.from_keras_model(keras(
        lambda x: tf.keras.layers.Conv2D(3, 3, padding="same")(x))))

    @tf.function(input_signature=[tf.TensorSpec((1, None, None, 3), tf.float32)])
    def any_size(img):
        return tf.nn.softmax(tf.reduce_mean(img, axis=[1, 2]) * tf.constant([1.0, 2.0, 3.0]))

    save("any_size", tf.lite.TFLiteConverter.from_concrete_functions([any_size.get_concrete_function()],
                                                                     any_size))

    @tf.function(input_signature=[tf.TensorSpec((1, 10), tf.int32)])
    def lookup(ids):
        return tf.gather(tf.constant(rng.random((5, 4), dtype=np.float32)), ids, axis=0)

    save("gather", tf.lite.TFLiteConverter.from_concrete_functions([lookup.get_concrete_function()],
                                                                   lookup))
    return out


def _bench(argv: list[str], tmp: Path) -> tuple[int, dict]:
    out = tmp / "b.json"
    rc = cli(["bench", *argv, "--runs", "10", "--warmup", "1", "--threads", "1", "--json", str(out)])
    return rc, json.loads(out.read_text()) if out.exists() else {}


def _data(tmp: Path) -> Path:
    d = tmp / "data"
    for lab in ("0", "1"):
        (d / lab).mkdir(parents=True)
        shutil.copy(next((HANDS / lab).glob("*.JPG")), d / lab / "a.jpg")
    return d


def test_precision_is_read_from_the_models_tensors(odd_models, tmp_path) -> None:
    names = ("fp32", "dynamic", "int8fio", "int16x8")
    rc, doc = _bench([str(odd_models[n]) for n in names], tmp_path)
    assert rc == 0
    got = {Path(r["file"]).stem: r["precision"] for r in doc["records"]}
    assert got == {"fp32": "fp32", "dynamic": "dynamic-range", "int8fio": "int8-float-io",
                   "int16x8": "int16x8"}
    # --precision keeps only what really is that precision
    rc, doc = _bench([str(odd_models[n]) for n in names] + ["--precision", "fp32"], tmp_path)
    assert rc == 0 and [Path(r["file"]).stem for r in doc["records"]] == ["fp32"]


def test_eval_names_a_file_as_bench_does(odd_models, tmp_path, capsys) -> None:
    out = tmp_path / "e.json"
    assert cli(["eval", "--model", str(odd_models["int8fio"]), "--data", str(_data(tmp_path)),
                "--json", str(out)]) == 0
    assert json.loads(out.read_text())["precision"] == "int8-float-io"
    assert "int8fio@file/int8-float-io" in capsys.readouterr().out


@pytest.mark.parametrize("name, shape", [("one_class", "[1, 1]"), ("image_out", "[1, 16, 16, 3]")])
def test_a_model_that_is_not_a_classifier_is_refused_in_one_line(odd_models, tmp_path, capsys,
                                                                 name, shape) -> None:
    model = str(odd_models[name])
    data = _data(tmp_path)
    for argv in (["eval", "--model", model, "--data", str(data)],
                 ["bench", "--pipeline", "--model", model, "--frames", "5", "--threads", "1",
                  "--state-dir", str(tmp_path / "s")]):
        assert cli(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], err
        assert f"output shape {shape} is not a vector of class scores" in err[0]
    # bench --data still times it and says why it has no accuracy
    rc, doc = _bench([model, "--data", str(data)], tmp_path)
    (r,) = doc["records"]
    assert rc == 2 and r["p50_ms"] > 0 and f"output shape {shape}" in r["accuracy_error"]


def test_a_dynamic_image_size_is_timed_at_224_and_said(odd_models, tmp_path, capsys) -> None:
    rc, doc = _bench([str(odd_models["any_size"])], tmp_path)
    out = capsys.readouterr().out
    assert rc == 0
    (r,) = doc["records"]
    assert r["inputs"][0]["shape"] == [1, 224, 224, 3] and r["inputs"][0]["signature"] == [1, -1, -1, 3]
    assert "has dynamic shape [1, -1, -1, 3], timed as [1, 224, 224, 3]" in out


def test_an_integer_index_input_is_benchmarked(odd_models, tmp_path, capsys) -> None:
    rc, doc = _bench([str(odd_models["gather"])], tmp_path)
    assert rc == 0, capsys.readouterr().err
    (r,) = doc["records"]
    assert r["inputs"] == [{"name": r["inputs"][0]["name"], "shape": [1, 10], "dtype": "int32"}]
    assert r["p50_ms"] > 0


def test_errors_show_plain_shapes(odd_models, tmp_path, capsys) -> None:
    assert cli(["eval", "--model", str(odd_models["gather"]), "--data", str(_data(tmp_path))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("input shape [1, 10] is not an image") and "np." not in err


def test_xnnpack_is_shown_per_row(odd_models, tmp_path, capsys) -> None:
    """The gather model has nothing XNNPACK takes, the classifier has: the header must not
    claim either for both."""
    rc, doc = _bench([str(odd_models["fp32"]), str(odd_models["gather"])], tmp_path)
    out = capsys.readouterr().out
    assert rc == 0
    on = {Path(r["file"]).stem: r["xnnpack"]["enabled"] for r in doc["records"]}
    assert on == {"fp32": True, "gather": False}
    assert "XNNPACK mixed (" in out and doc["machine"]["xnnpack"]["mixed"] is True
    rows = {ln.split()[0]: ln.split()[3] for ln in out.splitlines() if ln.startswith(("fp32 ", "gather "))}
    assert rows == {"fp32": "on", "gather": "off"}
