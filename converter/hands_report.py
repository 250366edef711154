"""The hand packages' quantization model card (report.md) and the choice of a variant.

The choice, per package: among the variants whose error against fp32 is within the bars
below, the fastest, unless it is not clearly faster (SPEED_MARGIN) than fp32, which then
wins: a variant that costs accuracy has to pay for it in speed.
"""

from __future__ import annotations

from typing import Any, Optional

# error bars a variant must keep to be chosen (against the fp32 model, on the photos measured)
MAX_LANDMARK_ERROR = 0.02  # mean landmark distance / hand size
MIN_PRESENCE_AGREEMENT = 0.98
MIN_DETECTION_AGREEMENT = 0.98
MIN_BOX_IOU = 0.9
SPEED_MARGIN = 0.9  # chosen over fp32 only when its p50 is below 0.9 x fp32's
ORDER = ("fp32", "fp16", "int8", "dynamic-range")


def _variant_figures(meta: dict) -> dict[str, dict]:
    m = meta.get("metrics", {})
    out = {p: m[p] for p in ("fp32", "fp16", "int8") if p in m and "vs_fp32" in m[p]}
    out.update(m.get("not_shipped", {}))
    return out


def error_bars_missed(task: str, acc: dict) -> list[str]:
    """Which bars a variant's figures (its vs_fp32) miss; [] = within them."""
    missed = []
    if task == "palm-detection":
        if acc["detection_agreement"] < MIN_DETECTION_AGREEMENT:
            missed.append(f"detection agreement {acc['detection_agreement']:.1%} < {MIN_DETECTION_AGREEMENT:.0%}")
        if acc["box_iou_mean"] is not None and acc["box_iou_mean"] < MIN_BOX_IOU:
            missed.append(f"box IoU {acc['box_iou_mean']:.3f} < {MIN_BOX_IOU}")
    else:
        err = acc["landmark_error_of_hand_size"]
        if err is not None and err > MAX_LANDMARK_ERROR:
            missed.append(f"landmark error {err:.2%} of hand size > {MAX_LANDMARK_ERROR:.0%}")
        if acc["presence_agreement"] < MIN_PRESENCE_AGREEMENT:
            missed.append(f"presence agreement {acc['presence_agreement']:.1%} < {MIN_PRESENCE_AGREEMENT:.0%}")
    return missed


def choose(meta: dict) -> tuple[Optional[str], dict[str, str]]:
    """(the winning precision, why each other variant lost)."""
    figs = _variant_figures(meta)
    if "fp32" not in figs:
        return None, {}
    base = figs["fp32"]["invoke"]["p50_ms"]
    why: dict[str, str] = {}
    ok = []
    for p in ORDER:
        if p not in figs or p == "fp32":
            continue
        missed = error_bars_missed(meta["task"], figs[p]["vs_fp32"])
        ms = figs[p]["invoke"]["p50_ms"]
        acc = figs[p]["vs_fp32"]
        same = acc.get("landmark_px_max", acc.get("keypoint_px_max")) == 0 and \
            acc.get("presence_agreement", acc.get("detection_agreement")) == 1
        if missed:
            why[p] = "; ".join(missed)
        elif same and ms >= SPEED_MARGIN * base:
            why[p] = (f"computes exactly what fp32 does (identical outputs on every photo: MediaPipe's "
                      f"fp32 file already stores float16 weights), {figs[p]['invoke']['bytes']} vs "
                      f"{figs['fp32']['invoke']['bytes']} bytes, and is no faster ({ms:.1f} vs {base:.1f} ms p50)")
        elif ms >= SPEED_MARGIN * base:
            why[p] = f"no faster than fp32 ({ms:.1f} vs {base:.1f} ms p50), so its error buys nothing"
        else:
            ok.append((ms, p))
    if not ok:
        return "fp32", why
    ok.sort()
    best = ok[0][1]
    for ms, p in ok[1:]:
        why[p] = f"slower than {best} ({ms:.1f} vs {ok[0][0]:.1f} ms p50)"
    why["fp32"] = f"slower than {best} ({base:.1f} vs {ok[0][0]:.1f} ms p50)"
    return best, why


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{v:.2%}"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def model_card(meta: dict) -> str:
    q = meta["provenance"]["quantization"]
    figs = _variant_figures(meta)
    best, why = choose(meta)
    palm = meta["task"] == "palm-detection"
    lines = [f"# {meta['name']} {meta['version']}: variants\n",
             f"MediaPipe Hands {meta['task']} model ({meta.get('license', '')}; "
             f"{meta.get('attribution', '')}). The fp32 file is the one MediaPipe ships, byte for byte: "
             "its weights are stored as float16 and dequantized at load, so it is already the size of "
             "an fp16 model and computes in float32.\n",
             f"Route: {q['route']}. The round trip's own float32 model differs from the source by at most "
             f"{q['route_check_max_abs_output_diff']} on any output.\n",
             f"Calibration (int8): {q['representative']}: {q['representative_sets']}.\n",
             f"Measured on other photos of the same sets: {q['measured_on']} "
             f"({', '.join(q['data_sets'])} under ../shared/data).\n"]
    if palm:
        lines += ["| variant | bytes | invoke p50 ms (1 thread) | detection agreement | box IoU mean | "
                  "keypoint err px (192) mean / p95 | keypoint err / palm size | no-hand agreement |",
                  "|---|---|---|---|---|---|---|---|"]
        for p in ORDER:
            if p not in figs:
                continue
            a, inv = figs[p]["vs_fp32"], figs[p]["invoke"]
            lines.append(f"| {p} | {inv['bytes']} | {inv['p50_ms']:.2f} | {_fmt(a['detection_agreement'], True)} "
                         f"| {_fmt(a['box_iou_mean'])} | {_fmt(a['keypoint_px_mean'])} / {_fmt(a['keypoint_px_p95'])} "
                         f"| {_fmt(a['keypoint_error_of_palm_size'], True)} "
                         f"| {_fmt(a['agreement_by_set'].get('epsrc no-hand'), True)} |")
    else:
        lines += ["| variant | bytes | invoke p50 ms (1 thread) | landmark err px (224) mean / p95 / max | "
                  "err / hand size mean / p95 | presence agreement | handedness agreement |",
                  "|---|---|---|---|---|---|---|"]
        for p in ORDER:
            if p not in figs:
                continue
            a, inv = figs[p]["vs_fp32"], figs[p]["invoke"]
            lines.append(f"| {p} | {inv['bytes']} | {inv['p50_ms']:.2f} | {_fmt(a['landmark_px_mean'])} / "
                         f"{_fmt(a['landmark_px_p95'])} / {_fmt(a['landmark_px_max'])} | "
                         f"{_fmt(a['landmark_error_of_hand_size'], True)} / "
                         f"{_fmt(a['landmark_error_of_hand_size_p95'], True)} | "
                         f"{_fmt(a['presence_agreement'], True)} | {_fmt(a['handedness_agreement'], True)} |")
    lines += ["", f"Invoke times: ai-edge-litert with XNNPACK, 1 thread, {figs['fp32']['invoke']['machine']}, "
              "the variants timed in turns (blocks of 10) so that they meet the same load; the absolute "
              "ms vary with the machine's load, their ratios less.\n",
              f"**Chosen: {best}** (the fastest variant within the error bars, and only if it is at least "
              f"{1 - SPEED_MARGIN:.0%} faster than fp32). Lost:\n"]
    lines += [f"- {p}: {why[p]}" for p in ORDER if p in why]
    lines += ["", "Schemes: " + "; ".join(f"{p}: {v.get('scheme', '')}" for p, v in meta["variants"].items()
                                          if v.get("scheme")) + ".", "",
              f"Made by `{q['command']}` on {q['date']} (git {q['git_commit'][:12]}); tools: "
              + ", ".join(f"{k} {v}" for k, v in q["tools"].items()) + ".", ""]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    """python -m converter.hands_report PACKAGE...: rewrite each report.md from its model.json."""
    import json
    import sys
    from pathlib import Path

    for d in (sys.argv[1:] if argv is None else argv):
        meta = json.loads((Path(d) / "model.json").read_text())
        (Path(d) / "report.md").write_text(model_card(meta))
        print(Path(d) / "report.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
