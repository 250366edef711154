"""A reference for `fingercount bench --pipeline`'s ratio: the same two-thread shape with none
of the product's code around it.

A capture thread preprocesses frame N+1 (640x480 -> model input, edge.runtime.preprocess)
while the main thread invokes frame N; the main thread does nothing else (no smoothing, no
result, no camera class, no stall watch). The ratio this reaches is the cost of two Python
threads handing over one frame at a time (GIL, a wake-up per frame, the second core's
contention). The product's replay@0 camera now queues a few frames and is woken once per
three, so the pipeline can match or pass this.

--processes runs the capture side in a second *process* instead (a shared-memory ring of
prepared frames, the newest read by sequence number; no GIL between the two sides). That is
a sketch of the design that would get past the two-thread floor, not what the daemon does:
its producer runs flat out and a slot being rewritten is not guarded.

Every row also gives the raw invoke rate while another thread preprocesses frames flat out
(`invoke_fps_beside_prep`): on a board with its own cores it matches `invoke_fps`; on a VM
whose two vCPUs share a physical core, or a host that is busy, it does not, and no pipeline
that overlaps preprocessing with inference can beat that ratio.

Run: .venv/bin/python tools/pipeline_floor.py [--model fingers-mobilenet] [--threads 1,2] [--processes]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.bench import percentiles, time_invokes  # noqa: E402
from edge.config import shipped_models_dir  # noqa: E402
from edge.runtime.classifier import Classifier  # noqa: E402
from edge.runtime.package import resolve_package  # noqa: E402
from edge.runtime.preprocess import prepare, read_image  # noqa: E402


def frames(n: int = 75) -> list[np.ndarray]:
    files = sorted(p for p in (ROOT / "tests" / "data" / "hands").rglob("*") if p.suffix.lower() == ".jpg")[:n]
    return [cv2.resize(read_image(str(p)), (640, 480), interpolation=cv2.INTER_LINEAR) for p in files]


def floor(clf: Classifier, imgs: list[np.ndarray], n: int) -> float:
    """Frames per second of the bare two-thread loop."""
    h, w, c = clf.input_shape
    cond = threading.Condition()
    slot: list = [None]
    stop = threading.Event()

    def capture() -> None:
        i = 0
        while not stop.is_set():
            px = prepare(imgs[i % len(imgs)], h, w, c)
            i += 1
            with cond:
                while slot[0] is not None and not stop.is_set():
                    cond.wait(0.1)
                slot[0] = px
                cond.notify()

    t = threading.Thread(target=capture, daemon=True)
    t.start()
    interp, idx = clf.model.interp, clf.model._in_index
    out = clf.model._out_index
    t0 = time.perf_counter()
    for _ in range(n):
        with cond:
            while slot[0] is None:
                cond.wait()
            px, slot[0] = slot[0], None
            cond.notify()
        interp.set_tensor(idx, px[None])
        interp.invoke()
        interp.get_tensor(out)
    fps = n / (time.perf_counter() - t0)
    stop.set()
    t.join(1)
    return fps


def invoke_fps_beside_prep(clf: Classifier, imgs: list[np.ndarray], n: int, blocks: int = 10) -> tuple[float, float]:
    """(raw invoke fps alone, raw invoke fps while a second thread preprocesses frames without
    pause), in alternating blocks so that the host's own swings hit both alike."""
    h, w, c = clf.input_shape
    invoke = clf.model.interp.invoke
    alone: list[float] = []
    beside: list[float] = []
    for _ in range(blocks):
        alone += time_invokes(invoke, n // blocks)
        stop = threading.Event()

        def busy(stop: threading.Event = stop) -> None:
            i = 0
            while not stop.is_set():
                prepare(imgs[i % len(imgs)], h, w, c)
                i += 1

        t = threading.Thread(target=busy, daemon=True)
        t.start()
        beside += time_invokes(invoke, n // blocks)
        stop.set()
        t.join(1)
    return percentiles(alone)["fps"], percentiles(beside)["fps"]


SLOTS = 3


def _producer(shm_name: str, shape: tuple[int, int, int], stop: object) -> None:
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(name=shm_name)
    seq = np.ndarray((1,), np.int64, shm.buf, 0)
    ring = np.ndarray((SLOTS, *shape), np.uint8, shm.buf, 8)
    imgs = frames()
    i = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        i += 1
        ring[i % SLOTS] = prepare(imgs[i % len(imgs)], *shape)
        seq[0] = i
    del seq, ring
    shm.close()


def floor_two_process(clf: Classifier, n: int) -> float:
    """Frames per second with the capture side in another process."""
    from multiprocessing import shared_memory

    shape = clf.input_shape
    shm = shared_memory.SharedMemory(create=True, size=8 + SLOTS * int(np.prod(shape)))
    seq = np.ndarray((1,), np.int64, shm.buf, 0)
    ring = np.ndarray((SLOTS, *shape), np.uint8, shm.buf, 8)
    seq[0] = 0
    stop = mp.Event()
    proc = mp.Process(target=_producer, args=(shm.name, shape, stop), daemon=True)
    proc.start()
    interp, idx, out = clf.model.interp, clf.model._in_index, clf.model._out_index
    try:
        while seq[0] < 2:
            time.sleep(0.01)
        last = 0
        t0 = time.perf_counter()
        for _ in range(n):
            s = int(seq[0])
            while s == last:
                time.sleep(0)
                s = int(seq[0])
            last = s
            interp.set_tensor(idx, ring[s % SLOTS][None])
            interp.invoke()
            interp.get_tensor(out)
        return n / (time.perf_counter() - t0)
    finally:
        stop.set()
        proc.join(2)
        del seq, ring
        shm.close()
        shm.unlink()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fingers-mobilenet")
    p.add_argument("--precision", default="int8")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--frames", type=int, default=3000)
    p.add_argument("--processes", action="store_true", help="capture side in a second process")
    args = p.parse_args()
    pkg = resolve_package(args.model, shipped_models_dir(), None)
    imgs = frames()
    rows = []
    for n in (int(x) for x in args.threads.split(",")):
        clf = Classifier(pkg, args.precision, n)
        clf.model.set_input(clf.preprocess(imgs[0]))
        time_invokes(clf.model.interp.invoke, 200)
        raw = percentiles(time_invokes(clf.model.interp.invoke, args.frames))["fps"]
        fps = floor_two_process(clf, args.frames) if args.processes else floor(clf, imgs, args.frames)
        alone, beside = invoke_fps_beside_prep(clf, imgs, args.frames)
        rows.append({"threads": n, "shape": "processes" if args.processes else "threads", "invoke_fps": round(raw, 1), "floor_fps": round(fps, 1),
                     "ratio": round(fps / raw, 3), "invoke_fps_beside_prep": round(beside, 1),
                     "beside_prep_ratio": round(beside / alone, 3)})
        print(json.dumps(rows[-1]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
