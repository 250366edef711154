"""Model card of a landmark count head: report.md and confusion matrices with a 'no hand' column."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from converter.report import draw_confusion


def plot_confusion(path: Path, m: dict, title: str) -> None:
    conf = np.array(m["confusion"])
    rows, cols = m["labels"][:conf.shape[0]], m["columns"]
    draw_confusion(path, conf, rows, cols,
                   f"{title}\naccuracy {m['accuracy'] * 100:.2f} % (n={m['n']}, no hand = wrong)",
                   (1.2 + 0.55 * len(cols), 0.9 + 0.5 * len(rows)), col_fontsize=8)


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def _files(names: list[str], shown: int = 12) -> str:
    more = f" and {len(names) - shown} more (model.json lists them all)" if len(names) > shown else ""
    return ", ".join(f"`{n}`" for n in names[:shown]) + more


def write_landmark_report(stage: Path, meta: dict, why: str = "") -> None:
    m = meta["metrics"]
    tr = meta["training"]
    hands = meta["hands"]
    lines = [f"# {meta['name']} {meta['version']} — model card", "",
             f"Task: {meta['task']}, counted from hand landmarks (no .tflite of its own: it runs after "
             f"the hand stage). Labels: {', '.join(meta['labels'])}. Features: "
             f"`{meta['retrainable']['features']}`, {meta['retrainable']['embedding_dim']} per hand "
             "(edge/hands/features.py).", "",
             f"Hand stage that made the landmarks: {hands['palm']} {hands.get('palm_version', '')} + "
             f"{hands['landmark']} {hands.get('landmark_version', '')}, {hands['precision']}, no tracking "
             "(each photo found from scratch).", ""]
    if meta["provenance"].get("toy"):
        lines += [f"- **Toy build** ({meta['provenance']['toy']}): not a usable model.", ""]
    if why:
        lines += ["## Why", "", why.strip(), ""]
    lines += ["## Accuracy (a photo where no hand was found counts as wrong)", "",
              "| set | photos | accuracy | accuracy on hands found | no hand found | macro-F1 |",
              "|---|---:|---:|---:|---:|---:|"]
    for key, mm in m.items():
        lines.append(f"| {key}: {mm['split']} of `{mm['dataset']}` | {mm['n']} | {_pct(mm['accuracy'])} | "
                     f"{_pct(mm['accuracy_found'])} | {mm['no_hand_found']} | {mm['macro_f1']:.4f} |")
    for key, mm in m.items():
        if "false_counts" in mm:
            lines += ["", f"Photos with no hand in {key} (`no-hand/`, {mm['no_hand_photos']}): a hand was "
                          f"found in {mm['hand_found_in_no_hand_photos']}, a count at confidence >= 0.6 "
                          f"reported for {mm['false_counts']} ({_pct(mm['false_count_rate'])})"
                      + (f": {_files(mm['false_count_files'])}" if mm["false_count_files"] else "") + "."]
    f = meta["fists"]
    lines += ["", "## Fists and other fingers (synthetic, from the test split's open hands)", "",
              f"Each of the {f['hands']} open hands (\"5\") of the test split with every one of the 32 "
              "subsets of its fingers folded at MCP/PIP/DIP (thumb across the palm), once at the "
              "middle of the fold ranges and once at random angles; the right answer is the number "
              f"left extended. The shared photos hold no fists (their 0 is an O-shape). Fists read 0: "
              f"**{_pct(f['fist_as_0']) if f['fist_as_0'] is not None else 'n/a'}**.", "",
              "| fingers folded | " + " | ".join(f["curled_k_correct"]) + " |",
              "|---|" + "---:|" * len(f["curled_k_correct"]),
              "| read 5 - k | " + " | ".join(_pct(v) for v in f["curled_k_correct"].values()) + " |", ""]
    lines += ["## Bars", "", "| bar | value | required | met |", "|---|---:|---:|---|"]
    for b in meta["bars"]:
        lines.append(f"| {b['name']} | {b['value']} | {b['required']} | {'yes' if b['met'] else '**NO**'} |")
    lines += ["", "## Per class", ""]
    for key, mm in m.items():
        plot_confusion(stage / f"confusion_{key}.png", mm, f"{meta['name']} {key}")
        lines += [f"### {key}", "", "| label | precision | recall | n |", "|---|---:|---:|---:|"]
        for lab, pc in mm["per_class"].items():
            if pc["n"] or pc["precision"]:
                lines.append(f"| {lab} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['n']} |")
        lines += ["", f"![confusion {key}](confusion_{key}.png)", ""]
        if mm["no_hand_found_files"]:
            lines += [f"No hand found in: {_files(mm['no_hand_found_files'])}.", ""]
    lines += ["## Training", "",
              f"Softmax regression in numpy (edge/softmax_regression.py), class-balanced, on the feature "
              f"groups {', '.join(tr['groups'])} (the others' weights are 0), L2 {tr['l2']} "
              f"(validation accuracy by L2: {tr['val_accuracy_by_l2']}), on {tr['examples']} examples: "
              f"{tr['real']} training photos' landmarks and {tr['synthetic']} augmented in landmark space "
              f"({tr['copies']} variants per photo; per open hand {tr['augment']['curl_copies']} more with "
              f"random fingers folded, labelled by the fingers left). Per label: {tr['per_label']}. "
              f"Augmentation: {tr['augment']}. base_embeddings.npz holds these features (float16) for "
              "retraining on the device.", ""]
    p = meta["provenance"]
    lines += ["## Provenance", ""] + [f"- {k}: `{v}`" for k, v in p.items()
                                      if k not in ("settings", "no_hand_found_files")]
    lines += [f"- hand stage: `{json.dumps(hands)}`", "", "Settings used:", "", "```json",
              json.dumps(p["settings"], indent=1, default=str), "```", ""]
    (stage / "report.md").write_text("\n".join(lines))
