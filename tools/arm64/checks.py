"""The checks of `make test-arm64`, run on the host by tools/arm64/run.sh.

Each check runs real fingercount commands inside the arm64 root filesystem (chroot through
qemu-user) and, where a result can be compared, the same command on x86 in this process's
venv. One line per check, then `arm64: N passed, M failed`; exit status 1 on any failure.
What is checked is derived from the checkout (the installed model packages, the default
model), so new models and dependencies are picked up without editing this file.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import mqtt_watch  # beside this file (the script's directory is on sys.path)
from board import VENV, Board, Host, cpu_seconds, on_term

SRC = Path(os.environ.get("FC_SRC") or Path(__file__).resolve().parents[2])
sys.path.insert(0, str(SRC))  # edge.config, for the default model

# one quantization step of a uint8 output, plus classify's rounding to 4 decimals on both sides
SCORE_TOL = 1 / 255 + 1e-4
# behind the hand stage the scores come from float landmarks through two fp32 networks and a
# numpy head: ARM's and x86's fp32 kernels sum in another order, so they agree to ~1e-2, not to
# a uint8 step; the hand's box is compared in pixels
HAND_SCORE_TOL = 0.02
BOX_TOL_PX = 3
# Byte-compiling every installed file runs emulated (minutes); the commands compile what they
# import on first use instead.
PIP_OFFLINE = ["--no-index", "--find-links", "/wheels", "--no-cache-dir", "--no-compile"]
PER_CLASS = 2                # photos per class folder for classify (emulation is slow)
DEVICE = "arm64-ci"


class Failed(Exception):
    pass


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def packages() -> dict[str, dict]:
    out = {}
    for mj in sorted((SRC / "models").glob("*/model.json")):
        out[mj.parent.name] = json.loads(mj.read_text())
    return out


def photos() -> list[Path]:
    hands = SRC / "tests/data/hands"
    return [p for d in sorted(x for x in hands.iterdir() if x.is_dir())
            for p in sorted(q for q in d.iterdir() if q.suffix.lower() in (".jpg", ".jpeg", ".png"))[:PER_CLASS]]


class Suite:
    def __init__(self, args: argparse.Namespace):
        self.board = Board(Path(args.root), args.qemu_cpu, args.qemu_version)
        self.host = Host(SRC, Path(args.work))
        self.port = args.mqtt_port
        self.passed = 0
        self.failed = 0
        self.installed = False
        self.pkgs = packages()
        self.default_model: Optional[str] = None
        pool = ThreadPoolExecutor(max_workers=1)  # the x86 side, while the board installs
        self.x86: dict[str, Future] = {}
        self._x86_pool = pool
        self._install_pool = ThreadPoolExecutor(max_workers=1)
        self.staged: Future = Future()

    def say(self, text: str) -> None:
        print(f"arm64: {text}", flush=True)

    def check(self, name: str, fn: Callable[[], str], needs_install: bool = True) -> None:
        t0 = time.monotonic()
        cpu_seconds.total = 0.0
        if needs_install and not self.installed:
            self.failed += 1
            self.say(f"FAIL {name}: not run, the install failed")
            return
        try:
            detail = fn()
        except Failed as e:
            self.failed += 1
            self.say(f"FAIL {name} ({self._took(t0)}): {e}")
            return
        except Exception as e:  # a bug in a check is a failure, with its type
            self.failed += 1
            self.say(f"FAIL {name} ({self._took(t0)}): {type(e).__name__}: {e}")
            return
        self.passed += 1
        self.say(f"PASS {name} ({self._took(t0)}): {detail}")

    @staticmethod
    def _took(t0: float) -> str:
        return f"{time.monotonic() - t0:.0f} s, cpu {getattr(cpu_seconds, 'total', 0.0):.0f} s"

    # --- the x86 side, started first -------------------------------------------------
    def start_x86(self) -> None:
        imgs = [str(p) for p in photos()]
        self.x86["classify"] = self._x86_pool.submit(self.host.fc, "classify", *imgs)
        for name, data in self.eval_sets():
            self.x86[f"eval {data}"] = self._x86_pool.submit(
                self.host.fc, "eval", "--data", str(SRC / data), "--model", name,
                "--json", str(self.host.state.parent / f"eval-{name}.json"))

    def eval_sets(self) -> list[tuple[str, str]]:
        """(model, data): the default finger model on the hand photos, a digit model on the digits."""
        default = self.default_name()
        sets = [(default, "tests/data/hands")]
        digit = next((n for n, m in self.pkgs.items() if m.get("task") == "digit"), None)
        if digit and (SRC / "tests/data/digits").is_dir():
            sets.append((digit, "tests/data/digits"))
        return sets

    def default_name(self) -> str:
        if self.default_model is None:
            from edge.config import Config
            self.default_model = Config().model.name
        return self.default_model

    # --- the checks --------------------------------------------------------------------
    def install(self) -> str:
        wheel = sorted(p.name for p in (self.board.root / "fcwheel").glob("fingercount-*.whl"))
        if not wheel:
            raise Failed("no fingercount wheel was built")
        r = self.board.sh(["/usr/bin/python3", "-m", "venv", VENV], 180)
        if r.rc != 0:
            raise Failed(f"python3 -m venv: {r.tail()}")
        r = self.board.sh([f"{VENV}/bin/pip", "install", "--quiet", "--disable-pip-version-check",
                           *PIP_OFFLINE, f"/fcwheel/{wheel[-1]}[edge]"], 600)
        if r.rc != 0:
            raise Failed(f"offline pip install: {r.tail()}")
        if list((self.board.root / "opt/fc-venv/lib").glob("python3*/site-packages/tensorflow")):
            raise Failed("TensorFlow ended up in the edge install")
        r = self.board.sh([f"{VENV}/bin/python", "-c",
                           "import platform, numpy, cv2, ai_edge_litert, pydantic, paho.mqtt, gpiozero, edge;"
                           "print(platform.machine(), platform.python_version(), 'numpy', numpy.__version__,"
                           " 'opencv', cv2.__version__, 'pydantic', pydantic.VERSION)"], 180)
        if r.rc != 0 or "aarch64" not in r.out:
            raise Failed(f"imports: {r.tail()}")
        self.installed = True
        return f"{wheel[-1]}[edge] from {len(list((self.board.root / 'wheels').glob('*.whl')))} " \
               f"aarch64 wheels, no network; {r.out.strip()}"

    def models(self) -> str:
        r = self.board.fc("models")
        if r.rc != 0:
            raise Failed(f"exit {r.rc}: {r.tail()}")
        missing = [n for n in self.pkgs if n not in r.out]
        if missing:
            raise Failed(f"not listed: {missing}")
        return f"lists {len(self.pkgs)} package(s): {', '.join(self.pkgs)}"

    def classify(self) -> str:
        imgs = photos()
        r = self.board.fc("classify", *[f"/src/{p.relative_to(SRC)}" for p in imgs], timeout=600)
        if r.rc != 0:
            raise Failed(f"exit {r.rc}: {r.tail()}")
        hx = self.x86["classify"].result()
        if hx.rc != 0:
            raise Failed(f"x86 classify exit {hx.rc}: {hx.tail()}")
        arm, x86 = json_lines(r.out), json_lines(hx.out)
        if len(arm) != len(imgs) or len(x86) != len(imgs):
            raise Failed(f"{len(arm)} arm / {len(x86)} x86 results for {len(imgs)} photos")
        worst, bad = 0.0, []
        for a, x in zip(arm, x86):
            if a["label"] != x["label"]:
                bad.append(f"{Path(x['image']).name}: {a['label']} != {x['label']}")
            xs, as_ = x.get("scores") or {}, a.get("scores") or {}  # none without a hand
            if set(xs) != set(as_):
                bad.append(f"{Path(x['image']).name}: scores for {sorted(as_)} != {sorted(xs)}")
                continue
            worst = max([worst] + [abs(as_[k] - xs[k]) for k in xs])
            ah, xh = a.get("hand") or {}, x.get("hand") or {}
            if ah.get("present") != xh.get("present"):
                bad.append(f"{Path(x['image']).name}: hand {ah.get('present')} != {xh.get('present')}")
            elif ah.get("box") and max(abs(p - q) for p, q in zip(ah["box"], xh["box"])) > BOX_TOL_PX:
                bad.append(f"{Path(x['image']).name}: hand box {ah['box']} != {xh['box']}")
        if bad:
            raise Failed(f"labels differ from x86: {bad}")
        hands = "hand" in arm[0]
        tol, what = (HAND_SCORE_TOL, "0.02, hand stage in fp32") if hands else (SCORE_TOL, "1/255 + rounding")
        if worst > tol:
            raise Failed(f"a score differs from x86 by {worst:.4f} > {what}")
        model = arm[0]["model"]
        if model != x86[0]["model"]:
            raise Failed(f"model {model} != x86 {x86[0]['model']}")
        inv = sorted(a["timing_ms"].get("invoke", 0) for a in arm)
        return (f"{len(arm)} photos, {model}: labels{' and hands' if hands else ''} identical to x86, "
                f"largest score difference {worst:.4f} (<= {what}); emulated invoke median "
                f"{inv[len(inv) // 2]:.0f} ms")

    def evaluate(self, name: str, data: str) -> str:
        out = f"/tmp/eval-{name}.json"
        r = self.board.fc("eval", "--data", f"/src/{data}", "--model", name, "--json", out, timeout=600)
        if r.rc != 0:
            raise Failed(f"exit {r.rc}: {r.tail()}")
        arm = json.loads((self.board.root / out.lstrip("/")).read_text())
        hx = self.x86[f"eval {data}"].result()
        if hx.rc != 0:
            raise Failed(f"x86 eval exit {hx.rc}: {hx.tail()}")
        x86 = json.loads((self.host.state.parent / f"eval-{name}.json").read_text())
        if arm["n"] != x86["n"] or arm["confusion"] != x86["confusion"]:
            raise Failed(f"n {arm['n']} / {x86['n']}, accuracy {arm['accuracy']:.4f} / "
                         f"{x86['accuracy']:.4f}: confusion differs from x86")
        return f"{name} on {data}: n={arm['n']}, accuracy {arm['accuracy']:.4f}, confusion identical to x86"

    def bench(self) -> str:
        name = self.default_name()
        meta = json.loads((SRC / "models" / name / "model.json").read_text())
        if not meta.get("variants"):  # a landmark head has no .tflite: time the model it runs on
            from edge.config import Config
            name = Config().hands.landmark
        precs: dict[str, dict] = {}
        first = ""
        for prec in ("int8", "fp32"):
            r = self.board.fc("bench", name, "--precision", prec, "--threads", "2", "--runs", "3",
                              "--warmup", "1", "--json", f"/tmp/bench-{prec}.json", timeout=600)
            if r.rc != 0:
                raise Failed(f"{prec}: exit {r.rc}: {r.tail()}")
            doc = json.loads((self.board.root / f"tmp/bench-{prec}.json").read_text())
            precs.update({rec["precision"]: rec for rec in doc["records"]})
            first = r.out.lstrip().splitlines()[0]
            if not first.startswith("EMULATED:") or not doc["machine"].get("emulated"):
                raise Failed(f"{prec}: the header does not say the timings are emulated: {first!r}")
            if doc["machine"].get("arch") != "aarch64":
                raise Failed(f"arch {doc['machine'].get('arch')}")
        if not {"int8", "fp32"} <= set(precs):
            raise Failed(f"precisions measured: {sorted(precs)}")
        # Not only the harness's variable: the board itself must be seen as emulated.
        d = self.board.sh([f"{VENV}/bin/python", "-c",
                           "from edge.machine import emulation; print(emulation())"],
                          drop=("FINGERCOUNT_EMULATED", "QEMU_CPU"), env={})
        if d.rc != 0 or "x86" not in d.out:
            raise Failed(f"emulation not detected without FINGERCOUNT_EMULATED: {d.out.strip()} {d.tail()}")
        return (f"{name} int8 p50 {precs['int8']['p50_ms']:.0f} ms, fp32 p50 {precs['fp32']['p50_ms']:.0f} ms "
                f"(emulated, not Pi figures); header: {first[:70]}…; detected without the harness "
                f"variable too: {d.out.strip()}")

    def daemon(self) -> str:
        watch = mqtt_watch.Watch("127.0.0.1", self.port, f"fingercount/{DEVICE}/#")
        watch.start()
        try:
            r = self.board.fc("run", "--camera", "replay:/src/tests/data/hands@4", "--mqtt",
                              f"127.0.0.1:{self.port}", "--device-id", DEVICE, "--duration", "15",
                              "--print", timeout=300)
            time.sleep(1.0)
        finally:
            got = watch.stop()
        if r.rc != 0:
            raise Failed(f"exit {r.rc}: {r.tail()}")
        base = f"fingercount/{DEVICE}"
        preds = [json.loads(p) for t, p in got if t == f"{base}/prediction"]
        counts = [json.loads(p) for t, p in got if t == f"{base}/count"]
        avail = [p.decode() for t, p in got if t == f"{base}/availability"]
        if len(preds) < 3 or not counts:
            raise Failed(f"{len(preds)} predictions, {len(counts)} counts received on the host")
        if avail[:1] != ["online"] or avail[-1:] != ["offline"]:
            raise Failed(f"availability {avail}")
        p = preds[-1]
        if not {"label", "scores", "timing_ms", "seq"} <= set(p):
            raise Failed(f"prediction without the contract's fields: {sorted(p)}")
        gpio = [ln for ln in r.err.splitlines() if "GPIO" in ln]
        if not gpio:
            raise Failed("no notice that GPIO is off (lgpio is not on Debian)")
        return (f"{len(preds)} predictions and {len(counts)} count message(s) reached the host broker "
                f"(model {p.get('model')}); availability {' -> '.join(avail)}; exit 0 after --duration; "
                f"GPIO fallback: {gpio[0].split(': ', 1)[-1][:90]}")

    def facts(self, work: Path) -> None:
        """ARM64_FACTS=1: re-measure the facts this route rests on (docs/arm64.md). Reported,
        not counted: a newer qemu or runtime may change them."""
        imgs = [p for p in photos() if p.parent.name in "012345"][::PER_CLASS]
        args = ["classify", *[f"/src/{p.relative_to(SRC)}" for p in imgs]]
        cpuinfo = self.board.root / "proc/cpuinfo"
        pi5 = work / "cpuinfo-pi5"
        pi5.write_text((self.board.root / "proc/cpuinfo").read_text().replace("0xd08", "0xd0b")
                       .replace("CPU variant\t: 0x0", "CPU variant\t: 0x4").replace("CPU revision\t: 3", "CPU revision\t: 1"))
        cases = [("QEMU_CPU=max, Pi 4 cpuinfo", {"QEMU_CPU": "max"}, None),
                 ("QEMU_CPU=cortex-a72, the host's x86 cpuinfo", {}, "/proc/cpuinfo"),
                 ("QEMU_CPU=cortex-a72, a Pi 5 (Cortex-A76) cpuinfo", {}, str(pi5))]
        for what, env, over in cases:
            if over:
                subprocess.run(["mount", "--bind", over, str(cpuinfo)], check=True)
            try:
                r = self.board.fc(*args, env=env)
            finally:
                if over:
                    subprocess.run(["umount", str(cpuinfo)], check=True)
            labels = [d["label"] for d in json_lines(r.out)]
            self.say(f"FACT {what}: exit {r.rc}, labels {labels or '-'} for true classes "
                     f"{[p.parent.name for p in imgs]}{'' if r.rc == 0 else ' | ' + r.tail(2)}")

    def picamera2(self) -> str:
        # check-config tries what run opens, one line per check: here only the camera may fail
        r = self.board.fc("check-config", "--camera", "picamera2", "--mqtt", "none")
        failed = [ln.strip() for ln in r.out.splitlines() if ln.strip().startswith("✗")]
        if r.rc != 1 or len(failed) != 1 or "picamera2" not in failed[0]:
            raise Failed(f"exit {r.rc}, failed checks {failed}: {r.tail()}")
        return f"check-config exit 1, one line: {failed[0]}"

    def start_install_sh(self) -> None:
        """install.sh builds and installs a second venv: it runs beside the other checks."""
        self.staged = self._install_pool.submit(
            self.board.sh, ["/bin/bash", "/src/systemd/install.sh", "--destdir", "/tmp/stage",
                            "--no-apt", "--no-start", "--python", "/usr/bin/python3",
                            "--pip-args", " ".join(PIP_OFFLINE)], 900)

    def install_sh(self) -> str:
        stage = "/tmp/stage"
        r = self.staged.result()
        if r.rc != 0:
            raise Failed(f"exit {r.rc}: {r.tail()}")
        root = self.board.root / stage.lstrip("/")
        want = ["opt/fingercount/venv/bin/fingercount", "etc/fingercount/config.yaml",
                "etc/systemd/system/fingercount.service", "usr/share/fingercount/models"]
        missing = [w for w in want if not (root / w).exists()]
        if missing:
            raise Failed(f"not staged: {missing}")
        c = self.board.sh([f"{stage}/opt/fingercount/venv/bin/fingercount", "check-config", "--config",
                           f"{stage}/etc/fingercount/config.yaml", "--mqtt", "none"],  # no broker here
                          env={"FINGERCOUNT_MODELS_DIR": f"{stage}/usr/share/fingercount/models",
                               "FINGERCOUNT_STATE_DIR": "/tmp/stage-state",
                               "FINGERCOUNT_CAMERA__SOURCE": "replay:/src/tests/data/hands"})
        if c.rc != 0:
            raise Failed(f"the staged venv's check-config: exit {c.rc}: {c.tail()}")
        return f"staged into {stage} ({r.seconds:.0f} s, cpu {r.cpu:.0f} s, beside the checks above); its venv's check-config passes on the staged config"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="the checks of make test-arm64 (run by tools/arm64/run.sh)")
    ap.add_argument("--root", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--qemu-cpu", required=True)
    ap.add_argument("--qemu-version", default="qemu-aarch64")
    ap.add_argument("--mqtt-port", type=int, required=True)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, on_term)
    s = Suite(args)
    (Path(args.work) / "x86-state").mkdir(parents=True, exist_ok=True)
    s.say("not reachable here (Raspberry Pi OS only): picamera2 (libcamera) and lgpio; "
          "their fallbacks are checked instead (one line for picamera2, GPIO off)")
    s.start_x86()
    s.check("install: edge extra offline from aarch64 wheels", s.install, needs_install=False)
    if s.installed:
        s.start_install_sh()
    s.check("models", s.models)
    s.check("classify vs x86", s.classify)
    for name, data in s.eval_sets():
        s.check(f"eval {data}", functools.partial(s.evaluate, name, data))
    s.check("bench int8 + fp32 (emulated header)", s.bench)
    s.check("run: replay camera -> mosquitto on the host", s.daemon)
    s.check("picamera2 missing: one clear line", s.picamera2)
    s.check("systemd/install.sh --destdir", s.install_sh)
    if os.environ.get("ARM64_FACTS") == "1" and s.installed:
        s.facts(Path(args.work))
    s._x86_pool.shutdown(wait=True)
    s._install_pool.shutdown(wait=True)
    s.say(f"{s.passed} passed, {s.failed} failed")
    return 1 if s.failed else 0


if __name__ == "__main__":
    threading.current_thread().name = "arm64"
    sys.exit(main(sys.argv[1:]))
