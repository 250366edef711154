"""Benchmark reports: a console table like benchmark_model's, Markdown, JSON and a plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from edge.errors import FingercountError
from edge.machine import describe
from edge.report_file import write_report


def _size(n: Optional[int]) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _f(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _pct(v: Optional[float]) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _xnn(r: dict) -> str:
    return {True: "on", False: "off", None: "?"}.get((r.get("xnnpack") or {}).get("enabled"), "?")


def _runs(r: dict) -> str:
    """Timed runs; "cut" when the per-case time cap stopped the case early."""
    return f"{r.get('runs', '-')}" + (" (cut)" if r.get("cut") else "")


def _acc(r: dict, key: str) -> str:
    return "not scored" if r.get("accuracy_error") else _pct(r.get(key))


def invoke_rows(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    acc = any("accuracy" in r or "accuracy_error" in r for r in records)
    head = ["model", "precision", "threads", "XNNPACK", "size", "init ms", "first ms", "warm-up ms",
            "runs", "p50 ms", "p90 ms", "p99 ms", "mean ms", "fps", "RSS Δ MB"]
    if acc:
        head += ["accuracy", "agrees with fp32"]
    rows = []
    for r in records:
        row = [r["model"], r["precision"], str(r["threads"]), _xnn(r), _size(r.get("bytes")),
               _f(r.get("init_ms"), 1), _f(r.get("first_ms")), _f(r.get("warmup_ms")), _runs(r),
               _f(r["p50_ms"]), _f(r["p90_ms"]), _f(r["p99_ms"]), _f(r["mean_ms"]),
               _f(r["fps"], 1), _f(r.get("rss_mb"), 1)]
        if acc:
            row += [_acc(r, "accuracy"), _acc(r, "agreement_fp32")]
        rows.append(row)
    return head, rows


def pipeline_rows(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    if any("tracking" in r for r in records):
        return hand_pipeline_rows(records)
    head = ["model", "precision", "threads", "XNNPACK", "frames", "pipeline fps", "invoke fps", "ratio",
            "ratio per block", "capture ms", "preprocess ms", "invoke ms", "smooth ms", "result ms", "total ms",
            "dropped", "preprocessed ahead (ms)"]
    rows = [[r["model"] + ("+head" if r.get("head") else ""), r["precision"], str(r["threads"]),
             _xnn(r), str(r["frames"]),
             _f(r["pipeline_fps"], 1), _f(r["invoke_fps"], 1), _f(r["ratio"], 3), _blocks(r),
             _f(r["capture_ms"], 3), _f(r["preprocess_ms"], 3), _f(r["invoke_ms"], 3),
             _f(r["smooth_ms"], 3), _f(r["result_ms"], 3), _f(r["total_ms"], 3),
             str(r["dropped"]), _ahead(r)] for r in records]
    return head, rows


def hand_pipeline_rows(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Behind the hand stage: per-stage p50 (detect is 0 on a tracked frame), tracking on/off."""
    head = ["model", "precision", "threads", "tracking", "frames", "pipeline fps", "invoke fps", "ratio",
            "detect ms", "landmarks ms", "count ms", "p50 ms", "total ms", "hand found", "detections",
            "dropped"]
    rows = [[r["model"] + ("+head" if r.get("head") else ""), r["precision"], str(r["threads"]),
             "on" if r["tracking"] else "off", str(r["frames"]),
             _f(r["pipeline_fps"], 1), _f(r["invoke_fps"], 1), _f(r["ratio"], 3),
             _f(r["detect_ms"], 2), _f(r["landmarks_ms"], 2), _f(r["count_ms"], 2),
             _f(r["total_p50_ms"], 2), _f(r["total_ms"], 2), f"{100 * r['hand_found']:.0f} %",
             f"{100 * r['detections_per_frame']:.0f} %", str(r["dropped"])] for r in records]
    return head, rows


def record_notes(r: dict) -> list[str]:
    """What a row's numbers need beside them: an input timed at a size the model left open,
    a case cut short by the time cap, an accuracy that could not be scored."""
    what = f"{r['model']} {r['precision']} x{r['threads']}"
    out = [f"{what}: input '{i['name']}' has dynamic shape {i['signature']}, timed as {i['shape']}"
           for i in r.get("inputs") or [] if i.get("signature")]
    if r.get("cut"):
        out.append(f"{what}: stopped by the {r.get('max_seconds', 30):g} s cap per case "
                   f"({r['runs']} of {r.get('runs_asked', r['runs'])} runs"
                   + ("" if r.get("overhead_pct") is not None else "; no overhead check") + ")")
    if r.get("accuracy_error"):
        out.append(f"{what}: accuracy not scored: {r['accuracy_error']}")
    return out


def _blocks(r: dict) -> str:
    """Median (min-max) of the per-block ratios: the spread shows how steady the machine was."""
    b = r.get("ratio_blocks")
    if not b:
        return "-"
    return f"{b['median']:.3f} ({b['min']:.2f}-{b['max']:.2f})"


def _ahead(r: dict) -> str:
    if not r.get("preprocessed_ahead"):
        return "no"
    return f"{100 * r['preprocessed_ahead']:.0f} % ({r['preprocess_ahead_ms']:.3f})"


def _rows(doc: dict) -> tuple[list[str], list[list[str]]]:
    return (pipeline_rows if doc["kind"] == "pipeline" else invoke_rows)(doc["records"])


# The console's default columns (the rest: --wide, --json, --markdown), in a terminal's 100.
TEXT_WIDTH = 100
NARROW = {
    "invoke": ["model", "precision", "threads", "XNNPACK", "size", "p50 ms", "p90 ms", "p99 ms", "fps",
               "accuracy", "agrees with fp32"],
    "pipeline": ["model", "precision", "threads", "frames", "pipeline fps", "invoke fps", "ratio",
                 "invoke ms", "total ms", "dropped"],
    "pipeline-hands": ["model", "precision", "threads", "tracking", "pipeline fps", "invoke fps", "ratio",
                       "detect ms", "landmarks ms", "count ms", "p50 ms", "hand found"],
}
SHORT = {"precision": "prec", "threads": "thr", "agrees with fp32": "vs fp32",
         "pipeline fps": "fps", "tracking": "track", "landmarks ms": "lmk ms", "hand found": "hand"}


def _narrow(kind: str, head: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    if kind == "pipeline" and "tracking" in head:
        kind = "pipeline-hands"
    keep = [i for i, h in enumerate(head) if h in NARROW[kind]]
    return [SHORT.get(head[i], head[i]) for i in keep], [[r[i] for i in keep] for r in rows]


def _fit_first_column(head: list[str], rows: list[list[str]], width: int) -> list[list[str]]:
    """Shorten the model names (the only free-length column) until the table fits `width`."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    over = sum(widths) + 2 * (len(widths) - 1) - width
    if over <= 0 or not rows:
        return rows
    room = max(len(head[0]), widths[0] - over)
    return [[c if len(c) <= room else c[:room - 1] + "…"] + r[1:] for r in rows for c in [r[0]]]


def pipeline_camera_line(doc: dict) -> Optional[str]:
    """Which camera a --pipeline run read, and whether it was the default."""
    cams = list(dict.fromkeys(r.get("camera") for r in doc["records"] if r.get("camera")))
    if doc["kind"] != "pipeline" or not cams:
        return None
    default = not doc["settings"].get("camera")
    what = "a bundled webcam clip" if any("tracking" in r for r in doc["records"]) else \
        "the bundled hand photos"
    return f"camera: {', '.join(cams)}" + (f" (default: {what}; --camera SPEC)" if default else "")


def overhead_line(records: list[dict]) -> Optional[str]:
    o = sorted(r["overhead_pct"] for r in records if r.get("overhead_pct") is not None)
    if not o:
        return None
    return (f"bench timing loop vs a bare invoke loop (interleaved blocks of 10 invokes, "
            f"median ms per invoke): "
            f"median {o[len(o) // 2]:+.1f} %, range {o[0]:+.1f} % .. {o[-1]:+.1f} %")


def overhead_words(records: list[dict]) -> Optional[str]:
    """The same check in a sentence (the console's default; the figures are in --wide)."""
    o = sorted(r["overhead_pct"] for r in records if r.get("overhead_pct") is not None)
    if not o:
        return None
    med = o[len(o) // 2]
    return (f"Timing check: within {abs(med):.1f} % of a bare interpreter loop (median of {len(o)} "
            f"case{'s' if len(o) != 1 else ''}; --wide: the spread).")


def failed_line(e: dict) -> str:
    """A case that could not be measured: which model and file, and why."""
    what = " ".join(str(x) for x in (e["model"], e.get("precision")) if x is not None)
    if e.get("threads") is not None:
        what += f" x{e['threads']}"
    where = "" if e["file"] in e["error"] else f" ({e['file']})"
    return f"{what}{where}: {e['error']}"


def failed_lines(doc: dict) -> list[str]:
    return [failed_line(e) for e in doc.get("errors") or []]


def header(doc: dict) -> list[str]:
    """The machine lines; XNNPACK says "mixed" when the cases differ (each row has its own)."""
    lines = describe(doc["machine"])
    if (doc["machine"].get("xnnpack") or {}).get("mixed"):
        lines = [ln.replace("XNNPACK unknown (", "XNNPACK mixed (") for ln in lines]
    return lines


def text_table(doc: dict, wide: bool = False) -> str:
    """The console report: by default the main columns in TEXT_WIDTH characters; wide: all."""
    head, rows = _rows(doc)
    if not wide:
        head, rows = _narrow(doc["kind"], head, rows)
        rows = _fit_first_column(head, rows, TEXT_WIDTH)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    right = lambda i: i >= 2  # noqa: E731 - numbers right-aligned
    def fmt(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if right(i) else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    cam = pipeline_camera_line(doc)
    lines = header(doc) + [""] + ([cam, ""] if cam else []) + [fmt(head), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in rows]
    notes = [n for r in doc["records"] for n in record_notes(r)]
    if notes:
        lines += ["", "notes:"] + [f"  {n}" for n in notes]
    failed = failed_lines(doc)
    if failed:
        lines += ["", "failed (not measured):"] + [f"  {f}" for f in failed]
    extra = (overhead_line if wide else overhead_words)(doc["records"]) if doc["kind"] == "invoke" else None
    if extra:
        lines += ["", extra]
    return "\n".join(lines) + "\n"


def markdown(doc: dict, title: Optional[str] = None) -> str:
    head, rows = _rows(doc)
    s = doc["settings"]
    out = [f"## {title or ('Pipeline' if doc['kind'] == 'pipeline' else 'Invoke latency')}", ""]
    cam = pipeline_camera_line(doc)
    out += [f"- {line}" for line in header(doc) + ([cam] if cam else [])]
    out.append(f"- Date: {doc['date']}; command: `{s.get('command', '')}`")
    out += ["", "| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    notes = [n for r in doc["records"] for n in record_notes(r)]
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    failed = failed_lines(doc)
    if failed:
        out += ["", "Failed (not measured):", ""] + [f"- {f}" for f in failed]
    extra = overhead_line(doc["records"]) if doc["kind"] == "invoke" else None
    if extra:
        out += ["", extra]
    return "\n".join(out) + "\n"


def write_json(doc: dict, path: str) -> None:
    write_report(path, json.dumps(doc, indent=1, default=str) + "\n")


def write_markdown(doc: dict, path: str) -> None:
    write_report(path, markdown(doc))


# what each report kind plots: (bar key, whisker-top key, y label)
PLOTTED = {
    "invoke": ("p50_ms", "p90_ms", "invoke latency, ms (bar p50, whisker p50 to p90)"),
    "pipeline": ("total_p50_ms", "total_p90_ms",
                 "pipeline latency per frame, ms (bar p50, whisker p50 to p90)"),
}


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise FingercountError("--plot needs matplotlib, which is not an edge dependency: "
                               "pip install matplotlib") from None
    return plt


def check_plot_path(path: str) -> None:
    """Refuse, before any measuring, a --plot path matplotlib would fail on or rename."""
    _pyplot()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    p = Path(path)
    if p.is_dir():
        raise FingercountError(f"--plot {path}: is a directory; give a file such as {p / 'bench.png'}")
    kinds = sorted(FigureCanvasAgg.get_supported_filetypes())
    if p.suffix.lower().lstrip(".") not in kinds:
        raise FingercountError(f"--plot {path}: the file name must end in one of "
                               f"{', '.join('.' + k for k in kinds)}")


def plot(doc: dict, path: str) -> None:
    """Latency per model and precision (p50 bar, whisker up to p90), one group per model/threads."""
    plt = _pyplot()
    recs = doc["records"]
    key, top, ylabel = PLOTTED[doc["kind"]]
    groups = sorted({(r["model"], r["threads"]) for r in recs}, key=lambda g: (g[0], g[1]))
    precs = [p for p in ("fp32", "fp16", "int8") if any(r["precision"] == p for r in recs)]
    precs += sorted({r["precision"] for r in recs} - set(precs))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) * max(1, len(precs)) / 2), 4.5))
    width = 0.8 / max(1, len(precs))
    for j, prec in enumerate(precs):
        xs, ys, err = [], [], []
        for i, g in enumerate(groups):
            r = next((r for r in recs if (r["model"], r["threads"]) == g and r["precision"] == prec), None)
            if r is None:
                continue
            xs.append(i + (j - (len(precs) - 1) / 2) * width)
            ys.append(r[key])
            err.append(max(0.0, r[top] - r[key]))
        # asymmetric: nothing below the bar, p90 above it (p90 >= p50 always)
        ax.bar(xs, ys, width, yerr=[[0.0] * len(err), err], capsize=3, label=prec)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{m}\n{t} thr" for m, t in groups], fontsize=8)
    ax.set_ylabel(ylabel)
    m = doc["machine"]
    ax.set_title(f"{m.get('cpu') or '?'}; {m.get('runtime')} {m.get('runtime_version')}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        raise FingercountError(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        plt.close(fig)
