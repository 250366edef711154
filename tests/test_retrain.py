"""On-device retraining with the shipped retrainable model, its real backbone and a real sample store."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import Config, load_config
from edge.errors import ModelError, RetrainError, SampleError
from edge.heads import rollback
from edge.personalize import check_label
from edge.retrain import RetrainCancelled, holdout_split, retrain
from edge.runtime.classifier import Backbone, Classifier, Head, head_dir, label_count
from edge.runtime.loader import open_classifier, open_package
from edge.runtime.package import ModelPackage, load_package
from edge.samples import Sample, SampleStore
from edge.softmax_regression import fit_softmax
from tests.conftest import HANDS, MODELS

RETRAINABLE = "fingers-mobilenet"


def models_dir() -> Path:
    # FC_TEST_MODELS_DIR lets a developer point at another build of the package.
    d = Path(os.environ.get("FC_TEST_MODELS_DIR", MODELS))
    name = os.environ.get("FC_TEST_RETRAINABLE", RETRAINABLE)
    if not (d / name / "model.json").is_file():
        pytest.fail(f"the retrainable model {d / name} is missing: build it with `make models` "
                    "(fingercount-convert build converter/recipes/fingers-mobilenet.yaml ...)", pytrace=False)
    return d


def make_cfg(tmp: Path, hands: bool = False, **retrain_kw: object) -> Config:
    """The retrain machinery (gate, folds, swap) on the whole-frame MobileNet its 2.3.0 package
    was trained as; behind the hand stage (hands=True) it embeds hand crops (test below), and
    the landmark head's retraining has tests of its own (test_landmark_counter.py)."""
    name = os.environ.get("FC_TEST_RETRAINABLE", RETRAINABLE)
    return load_config(None, {"state_dir": str(tmp / "state"), "models_dir": str(models_dir()),
                              "model": {"name": name, "precision": "int8", "threads": 1},
                              "hands": {"enabled": hands},
                              "retrain": {"holdout": 0.34, **retrain_kw}}, environ={})


def rgb(p: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)


def fill(store: SampleStore, per_label: int, labels: dict[str, str]) -> None:
    """labels: sample label -> folder(s) of tests/data/hands ("6,7") to take the pictures from."""
    for lab, folders in labels.items():
        pics = [p for f in folders.split(",") for p in sorted((HANDS / f).glob("*.JPG"))]
        for p in pics[:per_label]:
            store.add(rgb(p), lab, source="test")


class CountingBackbone(Backbone):
    """The real backbone; counts how many images it actually embeds."""

    calls = 0

    def embed_frame(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return super().embed_frame(frame)


FINGERS = {str(i): str(i) for i in range(6)}


def fresh(tmp: Path) -> tuple[Config, ModelPackage, Path]:
    """The config, the retrainable package, and where its retrained head would be."""
    cfg = make_cfg(tmp)
    pkg = open_package(cfg)
    return cfg, pkg, head_dir(cfg.state_dir, pkg.name) / "head.npz"


def test_embeddings_are_cached_per_backbone(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    pkg = open_package(cfg)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 3, FINGERS)
        bb = CountingBackbone(pkg, "int8", 1)
        r1 = retrain(cfg, pkg, store, "int8", backbone=bb)
        assert bb.calls == 18 and r1.embeddings_computed == 18
        r2 = retrain(cfg, pkg, store, "int8", backbone=bb)
        assert bb.calls == 18 and r2.embeddings_computed == 0  # all cached
        store.add(rgb(sorted((HANDS / "4").glob("*.JPG"))[5]), "4")
        r3 = retrain(cfg, pkg, store, "int8", backbone=bb)
        assert bb.calls == 19 and r3.embeddings_computed == 1  # only the new sample
        # another precision's backbone is another network: everything is embedded again
        bb32 = CountingBackbone(pkg, "fp32", 1)
        assert bb32.sha256 != bb.sha256
        r4 = retrain(cfg, pkg, store, "fp32", backbone=bb32)
        assert bb32.calls == 19 and r4.embeddings_computed == 19
        # the cached embedding is what the backbone makes for the stored JPEG
        samples, X = store.embeddings(bb32.sha256)
        again = Backbone(pkg, "fp32", 1).embed_frame(store.read_frame(samples[0]))
        assert np.allclose(X[0], again, atol=1e-5)


def test_new_label_swap_and_rollback(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    pkg = open_package(cfg)
    shipped = open_classifier(cfg)
    assert shipped.head is None and shipped.labels == [str(i) for i in range(6)]
    with SampleStore(cfg.state_dir) as store:
        fill(store, 4, {**FINGERS, "none": "6,7"})  # other signs stand in for "no finger count"
        res = retrain(cfg, pkg, store, "int8")
    assert res.swapped, res.reason
    assert res.new_labels == ["none"] and "none" in res.labels
    assert res.samples_per_label["none"] == 4 and sum(res.holdout_per_label.values()) >= 7
    assert res.accuracy_after is not None and res.accuracy_after >= res.accuracy_before
    assert 0 <= res.duration_s < 30
    # every later command that loads the model uses the new head
    clf = open_classifier(cfg)
    assert clf.head is not None and clf.labels == res.labels and clf.model_id.endswith("+head")
    assert label_count("none") is None
    probs, _ = clf.classify(rgb(sorted((HANDS / "8").glob("*.JPG"))[0]))
    assert probs.shape == (7,) and abs(float(probs.sum()) - 1) < 1e-4
    # rollback: back to the shipped fused model; a second rollback re-applies the retrained head
    assert rollback(cfg, pkg)["head"] == "shipped"
    assert not (head_dir(cfg.state_dir, pkg.name) / "head.npz").exists()
    assert open_classifier(cfg).labels == [str(i) for i in range(6)]
    assert rollback(cfg, pkg)["head"] == "retrained"
    assert open_classifier(cfg).labels == res.labels


def test_gate_refuses_a_worse_head_unless_forced(tmp_path: Path) -> None:
    cfg, pkg, head = fresh(tmp_path)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 6, FINGERS)
        # The current head: fitted to all these samples (held-out ones included), so it is
        # as good as a head can be on them, whatever the backbone's quality.
        bb = Backbone(pkg, "int8", 1)
        store.ensure_embeddings(bb)
        samples, X = store.embeddings(bb.sha256)
        y = np.array([int(s.label) for s in samples])
        fit = fit_softmax(X, y, 6, l2=1e-4)
        Head(fit.W, fit.b, tuple(FINGERS)).save(head)
        current = head.read_bytes()
        # An absurd L2 weight makes the next head (nearly) constant: worse than the current one.
        bad_cfg = make_cfg(tmp_path, l2=1e4)
        res = retrain(bad_cfg, pkg, store, "int8")
        assert not res.swapped
        assert res.accuracy_before == 1.0 and res.accuracy_after < res.accuracy_before
        assert "not swapped" in res.reason and "force" in res.reason
        assert head.read_bytes() == current  # untouched
        forced = retrain(bad_cfg, pkg, store, "int8", force=True)
    assert forced.swapped and forced.forced and "forced" in forced.reason
    assert head.read_bytes() != current


def test_one_sample_per_label_cannot_be_checked_so_it_needs_force(tmp_path: Path) -> None:
    # Every sample trains the head: nothing is left to show it is not worse than the current one.
    cfg, pkg, head = fresh(tmp_path)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 1, FINGERS)
        res = retrain(cfg, pkg, store, "int8")
        assert not res.swapped and res.gate == "none" and res.accuracy_before is None
        assert "no held-out samples" in res.reason and "force" in res.reason
        assert not head.exists()
        forced = retrain(cfg, pkg, store, "int8", force=True)
    assert forced.swapped and "without a check" in forced.reason and head.is_file()


def test_a_head_that_gets_no_unseen_sample_right_is_not_swapped_in(tmp_path: Path) -> None:
    # After a good retrain one mislabelled sample (a 5 labelled 2) is all the gate can judge
    # by; both heads get it wrong, which used to pass as "no worse" and swap.
    cfg, pkg, head = fresh(tmp_path)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 6, FINGERS)
        assert retrain(cfg, pkg, store, "int8", force=True).swapped
        installed = head.read_bytes()
        store.add(rgb(sorted((HANDS / "5").glob("*.JPG"))[7]), "2", source="test")
        res = retrain(cfg, pkg, store, "int8")
        assert res.gate == "cross-validation, 1 fold" and res.holdout_per_label == {"2": 1}
        assert not res.swapped and res.accuracy_after == 0.0, res.reason
        assert "gets none of the 1 sample(s)" in res.reason and "force" in res.reason
        assert head.read_bytes() == installed
        assert retrain(cfg, pkg, store, "int8", force=True).swapped


def test_few_samples_cross_validate_and_the_gate_leaves_out_what_the_current_head_saw(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, holdout=0.2)
    pkg = open_package(cfg)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 4, FINGERS)
        first = retrain(cfg, pkg, store, "int8", force=True)
        # 4 per label would hold out 1: every sample trains the head and is scored out of fold
        assert first.gate == "cross-validation, 4 folds"
        assert first.train_per_label == first.holdout_per_label == {lab: 4 for lab in FINGERS}
        for lab in FINGERS:
            for pic in sorted((HANDS / lab).glob("*.JPG"))[4:8]:
                store.add(rgb(pic), lab, source="test")
        second = retrain(cfg, pkg, store, "int8", force=True)
    # the current head trained on the first 4 per label: only the 4 new ones can judge it
    assert second.samples_per_label == second.train_per_label == {lab: 8 for lab in FINGERS}
    assert second.holdout_per_label == {lab: 4 for lab in FINGERS}
    assert second.gate == "cross-validation, 4 folds"


def test_enough_samples_use_a_held_out_part(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, holdout=0.4)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 8, FINGERS)
        res = retrain(cfg, open_package(cfg), store, "int8", force=True)
    assert res.gate == "held-out samples"
    assert res.train_per_label == {lab: 5 for lab in FINGERS}
    assert res.holdout_per_label == {lab: 3 for lab in FINGERS}
    assert res.warning is None  # every label sampled


def test_samples_of_only_some_labels_come_with_a_warning(tmp_path: Path) -> None:
    # Dark photos of "3" alone teach the head that dark means 3; the gate, scoring 3 only,
    # cannot see that, so the result says what to capture as well.
    cfg = make_cfg(tmp_path)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 6, {"3": "3"})
        res = retrain(cfg, open_package(cfg), store, "int8", force=True)
    assert res.warning is not None
    assert "cover 1 of 6 labels" in res.warning and "as 3" in res.warning
    assert res.warning.endswith("capture 0, 1, 2, 4, 5 there too")


def test_holdout_is_stratified_and_deterministic() -> None:
    samples = [Sample(i, lab, Path(f"{i}.jpg"), f"{(i * 7919) % 1000:04d}", "t", "")
               for i, lab in enumerate(["a"] * 10 + ["b"] * 5 + ["c"] * 1)]
    train, hold = holdout_split(samples, 0.2)
    assert sorted(train + hold) == list(range(16))
    held = [samples[i].label for i in hold]
    assert held.count("a") == 2 and held.count("b") == 1 and held.count("c") == 0
    assert holdout_split(list(reversed(samples)), 0.2)[1] != []  # order-independent membership:
    assert {samples[i].id for i in hold} == {s.id for j, s in enumerate(reversed(samples))
                                            if j in holdout_split(list(reversed(samples)), 0.2)[1]}


def test_retrain_without_samples_is_a_clear_error(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    with SampleStore(cfg.state_dir) as store, pytest.raises(RetrainError, match="no samples"):
        retrain(cfg, open_package(cfg), store, "int8")


def non_retrainable_copy(tmp: Path) -> Path:
    """The same package with its backbone/head removed from model.json: a fixed-label model."""
    src = models_dir() / os.environ.get("FC_TEST_RETRAINABLE", RETRAINABLE)
    dst = tmp / "models" / "fixed"
    shutil.copytree(src, dst)
    meta = json.loads((dst / "model.json").read_text())
    meta["retrainable"] = None
    meta["name"] = "fixed"
    (dst / "model.json").write_text(json.dumps(meta))
    return dst


def test_fixed_model_refuses_new_labels_and_retraining(tmp_path: Path) -> None:
    pkg = load_package(non_retrainable_copy(tmp_path))
    clf = Classifier(pkg, "int8", 1)
    assert check_label("3", clf) == "3"
    with pytest.raises(SampleError, match="cannot learn new ones"):
        check_label("none", clf)
    with pytest.raises(SampleError):
        check_label("", clf)
    cfg = make_cfg(tmp_path)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 2, {"3": "3", "4": "4"})
        with pytest.raises(RetrainError, match="cannot be retrained"):
            retrain(cfg, pkg, store, "int8")


def test_time_limit_keeps_the_embeddings_done_so_far(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, max_seconds=0.001)
    pkg = open_package(cfg)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 3, FINGERS)
        bb = CountingBackbone(pkg, "int8", 1)
        with pytest.raises(RetrainError, match="time limit"):
            retrain(cfg, pkg, store, "int8", backbone=bb)
        assert not (head_dir(cfg.state_dir, pkg.name) / "head.npz").exists()
        done = bb.calls
        assert done < 18
        res = retrain(make_cfg(tmp_path), pkg, store, "int8", backbone=bb)
        assert res.embeddings_computed == 18 - done and bb.calls == 18  # continued, nothing twice


def test_a_cancel_stops_the_embedding_and_keeps_what_was_done(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    pkg = open_package(cfg)
    cancel = threading.Event()

    def progress(phase: str, frac: float, detail: dict) -> None:
        if phase == "embedding" and detail.get("done") == 2:
            cancel.set()  # the daemon is stopping

    with SampleStore(cfg.state_dir) as store:
        fill(store, 3, FINGERS)
        bb = CountingBackbone(pkg, "int8", 1)
        with pytest.raises(RetrainCancelled, match="nothing was installed"):
            retrain(cfg, pkg, store, "int8", force=True, progress=progress, backbone=bb, cancel=cancel)
        assert bb.calls == 3  # stopped after the sample in hand, not after all 18
        assert not (head_dir(cfg.state_dir, pkg.name) / "head.npz").exists()
        res = retrain(cfg, pkg, store, "int8", backbone=bb)
        assert res.embeddings_computed == 15  # the three were kept


@pytest.mark.parametrize("phase", ["training", "validating"])
def test_a_cancel_stops_the_training_within_a_step_and_installs_nothing(tmp_path: Path, phase: str) -> None:
    # The tester's slow settings: without the cancel this trains for seconds.
    cfg = make_cfg(tmp_path, epochs=100000, l2=1e-7)
    pkg = open_package(cfg)
    cancel = threading.Event()
    steps_after: list[int] = []
    cancelled_at: list[float] = []

    def progress(p: str, frac: float, detail: dict) -> None:
        if cancel.is_set():
            steps_after.append(detail.get("step", -1))
        elif p == phase and detail.get("step", 0) >= 2:
            cancelled_at.append(time.monotonic())
            cancel.set()

    with SampleStore(cfg.state_dir) as store:
        fill(store, 4, FINGERS)  # 1 held out per label: the gate cross-validates
        with pytest.raises(RetrainCancelled):
            retrain(cfg, pkg, store, "int8", force=True, progress=progress, cancel=cancel)
        took = time.monotonic() - cancelled_at[0]
    assert steps_after == [], f"went on for steps {steps_after}"
    assert took < 1.0, f"{took:.2f} s from the cancel to the end"
    assert not (head_dir(cfg.state_dir, pkg.name) / "head.npz").exists()
    assert open_classifier(cfg).head is None


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bit-flip"])
def test_a_damaged_head_on_disk_falls_back_to_the_shipped_model(tmp_path: Path, damage: str) -> None:
    """An SD card can damage a file that was written atomically: the service keeps counting
    with the shipped head and says why, and the next retrain writes a good head over it."""
    cfg, pkg, path = fresh(tmp_path)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 4, FINGERS)
        assert retrain(cfg, pkg, store, "int8", force=True).swapped
        good = path.read_bytes()
        path.write_bytes({"garbage": b"\x00" * 64, "truncated": good[: len(good) // 2],
                          "bit-flip": good[:300] + bytes([good[300] ^ 0x10]) + good[301:]}[damage])
        clf = open_classifier(cfg)
        assert clf.head is None and not clf.model_id.endswith("+head")
        assert clf.head_problem is not None and "not a valid head file" in clf.head_problem
        probs, _ = clf.classify(rgb(sorted((HANDS / "3").glob("*.JPG"))[0]))
        assert clf.labels[int(np.argmax(probs))] == "3"
        with pytest.raises(ModelError, match="not a valid head file"):  # asked for by path: an error
            Classifier(pkg, "int8", 1, head_path=path)
        res = retrain(cfg, pkg, store, "int8", force=True)
    assert res.swapped
    assert open_classifier(cfg).head is not None and open_classifier(cfg).head_problem is None
    assert rollback(cfg, pkg)["head"] == "shipped"  # the damaged file was not kept as "previous"


def test_a_head_changed_while_training_is_not_overwritten(tmp_path: Path) -> None:
    # Two retrains at once (MQTT and the command line): the later install would keep the head
    # it read before training as "previous" and lose the one installed meanwhile.
    from edge.heads import current_head, head_identity, install_head

    cfg = make_cfg(tmp_path)
    pkg = open_package(cfg)
    with SampleStore(cfg.state_dir) as store:
        fill(store, 4, FINGERS)
        first = retrain(cfg, pkg, store, "int8", force=True)
    assert first.swapped
    seen = head_identity(cfg.state_dir, pkg.name)
    cur, is_user = current_head(cfg, pkg)
    meanwhile = Head(cur.W * 0.5, cur.b, cur.labels)
    install_head(cfg, pkg, meanwhile, cur, is_user, {"marker": "meanwhile"})
    with pytest.raises(RetrainError, match="the head changed while this retrain ran"):
        install_head(cfg, pkg, cur, cur, is_user, {"marker": "late"}, seen)
    assert current_head(cfg, pkg)[0].W.tolist() == meanwhile.W.tolist()


def test_behind_the_hand_stage_a_crop_model_learns_from_hand_crops(tmp_path: Path) -> None:
    """What the model sees on the device is the hand crop: its samples are embedded from the crop
    (Hand.square_crop), a sample with no hand is left out, and the cache is not the whole-frame
    one."""
    import json
    import shutil

    from edge.hands import load_hand_stage
    from edge.runtime.classifier import Backbone
    from edge.sample_features import CropBackboneFeatures, sample_features

    cfg = make_cfg(tmp_path, hands=True)
    assert not isinstance(sample_features(cfg, open_package(cfg), "int8"), CropBackboneFeatures)
    # the same backbone as if trained on hand crops (model.json input.crop, as crop recipes write)
    copy = tmp_path / "models" / "fingers-mobilenet"
    shutil.copytree(models_dir() / "fingers-mobilenet", copy)
    meta = json.loads((copy / "model.json").read_text())
    meta["input"]["crop"] = "hand"
    (copy / "model.json").write_text(json.dumps(meta))
    pkg = load_package(copy)
    fx = sample_features(cfg, pkg, "int8")
    assert isinstance(fx, CropBackboneFeatures)
    whole = Backbone(pkg, "int8", 1)
    assert fx.sha256 != whole.sha256 and fx.head_info()["backbone_sha256"] == whole.sha256
    hand_photo = rgb(sorted((HANDS / "5").glob("*.JPG"))[0])
    no_hand = rgb(Path(__file__).parent / "data" / "hands-real" / "epsrc" / "no-hand" / "19.jpg")
    hand = load_hand_stage(MODELS, tracking=False)(hand_photo)
    assert hand is not None
    want = whole.embed_frame(hand.square_crop(hand_photo, max(whole.input_shape[:2])))
    assert np.allclose(fx.embed_frame(hand_photo), want)
    assert fx.embed_frame(no_hand) is None
    with SampleStore(cfg.state_dir) as store:
        store.add(hand_photo, "5", source="test")
        store.add(no_hand, "5", source="test")
        assert fx.prepare(store, None, None) == 2
        samples, X, no_hand = fx.load(store)
        assert no_hand == 1 and len(samples) == 1 and samples[0].label == "5"  # the stored JPEG's crop:
        assert np.allclose(X[0], fx.embed_frame(rgb(samples[0].path)))
        assert fx.prepare(store, None, None) == 0  # the no-hand sample is not looked at again
