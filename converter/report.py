"""Model card: confusion-matrix and training-curve PNGs, report.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from converter.augment import CORRUPTION_NOTES  # noqa: E402


def plot_confusion(path: Path, m: dict, title: str) -> None:
    conf = np.array(m["confusion"])
    labels = m["labels"]
    draw_confusion(path, conf, labels, labels, f"{title}\naccuracy {m['accuracy'] * 100:.2f} % (n={m['n']})",
                   (1.0 + 0.5 * len(labels), 0.8 + 0.5 * len(labels)))


def draw_confusion(path: Path, conf: np.ndarray, rows: list[str], cols: list[str], title: str,
                   size: tuple[float, float], col_fontsize: Optional[int] = None) -> None:
    """A confusion matrix as a PNG: counts in the cells, true rows, predicted columns."""
    fig, ax = plt.subplots(figsize=size, dpi=90)
    ax.imshow(conf, cmap="Blues")
    for i in range(conf.shape[0]):
        for j in range(conf.shape[1]):
            if conf[i, j]:
                ax.text(j, i, str(conf[i, j]), ha="center", va="center",
                        color="white" if conf[i, j] > conf.max() / 2 else "black", fontsize=8)
    ax.set_xticks(range(len(cols)), cols, fontsize=col_fontsize)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_history(path: Path, history: dict, title: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=90)
    for key, ax in (("loss", axes[0]), ("accuracy", axes[1])):
        if key in history:
            ax.plot(history[key], label="train (augmented)")
        if f"val_{key}" in history:
            ax.plot(history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def measured(bar: dict) -> bool:
    """False for a bar that was not measured (the robustness bar with --no-robustness)."""
    return bar.get("measured", True) is not False


def unmet_bars(meta: dict) -> list[str]:
    """The bars measured and missed, as text."""
    return [f"{b['name']} {b['value']} (required {b['required']})" for b in meta.get("bars", [])
            if not b["met"] and measured(b)]


def unmeasured_bars(meta: dict) -> list[str]:
    """The names of the bars that were not measured (e.g. robustness with --no-robustness)."""
    return [b["name"] for b in meta.get("bars", []) if not measured(b)]


def _cell(x: object) -> str:
    """Text for a Markdown table cell: a bare '|' would end the cell ('|fp32 - fp16|')."""
    return str(x).replace("|", "\\|")


def _pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def write_report(path: Path, meta: dict, notes: list[str], curves: list[str], why: str = "") -> None:
    m = meta["metrics"]
    lines = [f"# {meta['name']} {meta['version']} — model card", "",
             f"Task: {meta['task']}. Labels: {', '.join(meta['labels'])}. "
             f"Input: {meta['input']['height']}x{meta['input']['width']}x{meta['input']['channels']} "
             f"{meta['input']['color']}, raw pixels 0..255.", ""]
    lines += [f"- {n}" for n in notes] + [""]
    if why:
        lines += ["## Why this architecture", "", why.strip(), ""]
    split = next(iter(m.values()))["split"]
    lines += [f"## Accuracy ({split} split, through the edge runtime)", "",
              "| precision | file | bytes | accuracy | macro-F1 | n |", "|---|---|---:|---:|---:|---:|"]
    for prec, mm in m.items():
        v = meta["variants"][prec]
        lines.append(f"| {prec} | {v['file']} | {v['bytes']:,} | {_pct(mm['accuracy'])} | "
                     f"{mm['macro_f1']:.4f} | {mm['n']} |")
    if meta["task"] == "finger-count":  # the studio test split beside photos from elsewhere
        from converter.real_world import card_section

        lines += [""] + card_section(meta)
    bars = meta.get("bars")
    if bars:
        lines += ["", "## Bars", "", "| bar | value | required | met |", "|---|---:|---:|---|"]
        for b in bars:
            if not measured(b):  # --no-robustness
                lines.append(f"| {_cell(b['name'])} | not measured | {_cell(b['required'])} | "
                             "**NO**: not measured (--no-robustness) |")
                continue
            lines.append(f"| {_cell(b['name'])} | {b['value']} | {_cell(b['required'])} | "
                         f"{'yes' if b['met'] else '**NO**'} |")
    lines += ["", "## Per class", ""]
    for prec, mm in m.items():
        lines += [f"### {prec}", "", "| label | precision | recall | n |", "|---|---:|---:|---:|"]
        for lab, pc in mm["per_class"].items():
            lines.append(f"| {_cell(lab)} | {pc['precision']:.3f} | {pc['recall']:.3f} | {pc['n']} |")
        lines += ["", f"![confusion {prec}](confusion_{prec}.png)", ""]
    rob = m.get("int8", {}).get("robustness")
    if rob:
        lines += ["## Robustness (int8, test split, one fixed corruption at a time)", "",
                  "| corruption | what | accuracy |", "|---|---|---:|"]
        for k, v in rob.items():
            lines.append(f"| {k} | {CORRUPTION_NOTES.get(k, 'mean of the above')} | {_pct(v)} |")
        lines.append("")
    if curves:
        lines += ["## Training curves", ""] + [f"![{c}]({c})" for c in curves] + [""]
    p = meta["provenance"]
    lines += ["## Provenance", ""] + [f"- {k}: `{v}`" for k, v in p.items()
                                      if k not in ("settings", "skipped_files", "training_files")]
    tf = p.get("training_files")
    if tf:
        lines.append(f"- training_files: `{tf['file']}` ({tf['count']} images of the "
                     f"{' and '.join(tf.get('splits', []))} splits by sha256; `fingercount eval` "
                     "warns when the folder it scores holds any of them)")
    lines.append("")
    if "settings" in p:  # the recipe as used, readable
        lines += ["Settings used:", "", "```json", json.dumps(p["settings"], indent=1), "```", ""]
    path.write_text("\n".join(lines))
