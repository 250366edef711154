"""The service unit, its hardening score, the install/uninstall scripts and the example config.

systemd-analyze comes from Debian's `systemd` package (`make test` installs it when missing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib
import yaml

from edge.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "fingercount.service"
INSTALL = ROOT / "systemd" / "install.sh"
UNINSTALL = ROOT / "systemd" / "uninstall.sh"
EXAMPLE = ROOT / "systemd" / "config.example.yaml"
MAX_EXPOSURE = 2.5
EXEC = "/opt/fingercount/venv/bin/fingercount"


def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if not exe:
        pytest.fail("systemd-analyze is missing: sudo apt-get install systemd "
                    "(make test does this as root)", pytrace=False)
    return exe


def unit_settings(text: str) -> dict[str, list[str]]:
    """[Service]/[Unit]/[Install] key -> every value given (keys may repeat)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def templated_unit(tmp: Path, exec_path: str) -> Path:
    """The unit with ExecStart pointing at a binary that exists here (verify checks it)."""
    text = UNIT.read_text()
    assert EXEC in text, "the unit no longer starts /opt/fingercount/venv/bin/fingercount"
    out = tmp / "fingercount.service"
    out.write_text(text.replace(EXEC, exec_path))
    return out


def test_unit_verifies_cleanly(tmp_path: Path) -> None:
    exe = systemd_analyze()
    # As shipped, the only complaint on a machine without the install is the missing binary.
    raw = subprocess.run([exe, "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    complaints = [ln for ln in (raw.stdout + raw.stderr).splitlines() if "fingercount.service" in ln]
    assert all("is not executable" in ln and EXEC in ln for ln in complaints), complaints
    # With ExecStart pointing at the real entry point, verify is silent and succeeds.
    fc = Path(sys.executable).parent / "fingercount"
    assert fc.exists(), f"{fc} missing: pip install -e '.[edge]'"
    unit = templated_unit(tmp_path, str(fc))
    res = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "fingercount.service" not in res.stdout + res.stderr, res.stdout + res.stderr


def test_unit_security_exposure_at_most_2_5() -> None:
    exe = systemd_analyze()
    res = subprocess.run([exe, "security", "--offline=true", "--no-pager", str(UNIT)],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for fingercount\.service: ([0-9.]+)", res.stdout)
    assert m, res.stdout[-2000:] + res.stderr
    exposure = float(m.group(1))
    print(f"systemd-analyze security --offline=true: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, res.stdout


def test_unit_contract() -> None:
    s = unit_settings(UNIT.read_text())
    one = {k: v[-1] for k, v in s.items()}
    assert one["Type"] == "notify"
    assert one["NotifyAccess"] == "main"
    assert int(one["WatchdogSec"]) > 0
    assert one["Restart"] == "on-failure"
    assert one["User"] == "fingercount"
    assert set(one["SupplementaryGroups"].split()) == {"video", "gpio"}
    assert one["StateDirectory"] == "fingercount"
    assert one["ConfigurationDirectory"] == "fingercount"
    assert "--config /etc/fingercount/config.yaml" in one["ExecStart"]
    # Devices: the camera (V4L2, media controller, DMA heaps) and GPIO chips, nothing else.
    assert one["DevicePolicy"] == "closed"
    allowed = {d.split()[0] for d in s["DeviceAllow"]}
    assert allowed == {"char-video4linux", "char-media", "char-dma_heap", "char-gpiochip"}
    families = set(one["RestrictAddressFamilies"].split())
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= families <= {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert one["ProtectSystem"] == "strict" and one["NoNewPrivileges"] == "yes"
    # With / read-only, lgpio needs a writable working directory for its pipes (gpiozero#1106).
    writable = {f"/run/{one.get('RuntimeDirectory')}", f"/var/lib/{one['StateDirectory']}"}
    assert one.get("WorkingDirectory") in writable, one.get("WorkingDirectory")


def test_edge_extras_never_pull_tensorflow() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["edge"]
    assert reqs, "no edge dependencies declared"
    assert not [r for r in reqs if re.match(r"\s*(tensorflow|keras|tf-)", r, re.I)], reqs
    assert re.search(r'"\$\{BUILD\}\[edge\]"', INSTALL.read_text()), "install.sh must install [edge] only"


def _leaf_keys(model: type, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, f in model.model_fields.items():
        sub = f.annotation
        if isinstance(sub, type) and hasattr(sub, "model_fields"):
            out |= _leaf_keys(sub, f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def _flatten(d: dict, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in d.items():
        out |= _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
    return out


def test_example_config_documents_every_key_with_its_default() -> None:
    text = EXAMPLE.read_text()
    cfg = load_config(EXAMPLE, environ={})
    defaults = Config(device_id=cfg.device_id, state_dir="/var/lib/fingercount")
    assert cfg.model_dump() == defaults.model_dump(), "an example value differs from its default"
    # Keys left at a computed default (device_id = hostname) are there, commented out.
    uncommented = re.sub(r"(?m)^# ([a-z_][a-z_0-9]*: )", r"\1", text)
    missing = _leaf_keys(Config) - _flatten(yaml.safe_load(uncommented))
    assert not missing, f"config.example.yaml does not mention: {sorted(missing)}"
    # Each leaf line says what it is for.
    bare = [ln for ln in uncommented.splitlines()
            if re.match(r"^\s*[a-z_0-9]+: *[^ #]", ln) and " # " not in ln]
    assert not bare, f"keys without a comment: {bare}"


def _checkout_copy(dst: Path) -> Path:
    """What install.sh needs from a checkout, copied so the test never touches the real tree."""
    dst.mkdir()
    for name in ("pyproject.toml", "README.md", "systemd", "docs"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name)
        elif src.exists():
            shutil.copy2(src, dst / name)
    shutil.copytree(ROOT / "edge", dst / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    models = dst / "models" / "demo"
    models.mkdir(parents=True)
    (models / "model.json").write_text('{"name": "demo"}\n')
    return dst


def _offline_env() -> dict[str, str]:
    # No index here: pip may not download build tools, so the build borrows setuptools and
    # wheel from the test venv; --no-deps because the staged venv cannot fetch numpy & co.
    env = dict(os.environ)
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    env.pop("DESTDIR", None)
    return env


def _install(checkout: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = ["bash", str(checkout / "systemd" / "install.sh"), "--destdir", str(root),
           "--python", getattr(sys, "_base_executable", sys.executable),
           "--pip-args", "--no-deps --no-index --no-build-isolation", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_offline_env())


def test_install_into_a_staging_root_is_idempotent(tmp_path: Path) -> None:
    checkout = _checkout_copy(tmp_path / "checkout")
    root = tmp_path / "root"
    first = _install(checkout, root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "useradd" not in first.stdout and "systemctl" not in first.stdout, first.stdout

    venv_fc = root / "opt/fingercount/venv/bin/fingercount"
    ver = subprocess.run([str(venv_fc), "--version"], capture_output=True, text=True, timeout=60)
    assert ver.returncode == 0 and ver.stdout.startswith("fingercount "), ver.stdout + ver.stderr
    # only the device's command: the converter is not installed, so its entry point would fail
    assert not (root / "opt/fingercount/venv/bin/fingercount-convert").exists()
    cfg_pyvenv = (root / "opt/fingercount/venv/pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg_pyvenv
    assert (root / "usr/share/fingercount/models/demo/model.json").is_file()
    assert (root / "etc/fingercount/config.yaml").read_text() == EXAMPLE.read_text()
    assert (root / "etc/systemd/system/fingercount.service").read_text() == UNIT.read_text()
    assert not (checkout / "build").exists(), "install.sh left a build/ directory in the checkout"

    # The installed unit verifies against the installed entry point (prefixed by the root).
    exe = systemd_analyze()
    unit = templated_unit(tmp_path, str(venv_fc))
    res = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr

    # Second run: the admin's config survives, models are replaced, nothing fails.
    (root / "etc/fingercount/config.yaml").write_text("device_id: kitchen-pi\n")
    (checkout / "models" / "demo" / "model.json").write_text('{"name": "demo", "v": 2}\n')
    second = _install(checkout, root)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "keeping existing" in second.stdout
    assert (root / "etc/fingercount/config.yaml").read_text() == "device_id: kitchen-pi\n"
    assert '"v": 2' in (root / "usr/share/fingercount/models/demo/model.json").read_text()
    assert not (root / "usr/share/fingercount/models.new").exists()

    # Uninstall keeps config and state unless --purge.
    un = subprocess.run(["bash", str(UNINSTALL), "--destdir", str(root)], capture_output=True,
                        text=True, timeout=60)
    assert un.returncode == 0, un.stdout + un.stderr
    assert not (root / "opt/fingercount").exists() and not (root / "usr/share/fingercount").exists()
    assert not (root / "etc/systemd/system/fingercount.service").exists()
    assert (root / "etc/fingercount/config.yaml").exists()
    purge = subprocess.run(["bash", str(UNINSTALL), "--destdir", str(root), "--purge"],
                           capture_output=True, text=True, timeout=60)
    assert purge.returncode == 0 and not (root / "etc/fingercount").exists(), purge.stdout + purge.stderr


def test_install_dry_run_changes_nothing(tmp_path: Path) -> None:
    checkout = _checkout_copy(tmp_path / "checkout")
    root = tmp_path / "root"
    res = _install(checkout, root, "--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not root.exists(), "--dry-run created files"
    plan = res.stdout
    assert "-m venv --system-site-packages" in plan
    assert re.search(r"pip install .*\[edge\]", plan), plan
    assert "fingercount.service" in plan and "config.yaml" in plan


def test_a_live_dry_run_shows_every_step_and_says_nothing_changed(tmp_path: Path) -> None:
    checkout = _checkout_copy(tmp_path / "checkout")
    before = Path("/etc/fingercount").exists(), Path("/opt/fingercount").exists()
    res = subprocess.run(["bash", str(checkout / "systemd" / "install.sh"), "--dry-run"],
                         capture_output=True, text=True, timeout=120, env=_offline_env())
    assert res.returncode == 0, res.stdout + res.stderr
    assert (Path("/etc/fingercount").exists(), Path("/opt/fingercount").exists()) == before
    assert "fingercount check-config --config /etc/fingercount/config.yaml" in res.stdout, res.stdout
    assert "systemctl enable fingercount.service" in res.stdout
    assert res.stdout.rstrip().endswith("dry run: nothing was changed"), res.stdout[-300:]


def test_install_refuses_clearly(tmp_path: Path) -> None:
    checkout = _checkout_copy(tmp_path / "checkout")
    shutil.rmtree(checkout / "models")
    res = _install(checkout, tmp_path / "root")
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("install.sh: error: no model packages"), res.stderr
    bad = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2 and "unknown option --frobnicate" in bad.stderr


def test_edge_stack_runs_under_memory_deny_write_execute(tmp_path: Path) -> None:
    """The unit sets MemoryDenyWriteExecute=yes; the kernel's PR_SET_MDWE is the same rule
    (no W+X mappings), so classify a real image with a shipped model under it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_mdwe, refuse_exec_gain = 65, 1

    def mdwe() -> None:
        if libc.prctl(pr_set_mdwe, refuse_exec_gain, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")

    # a classifier (the hand stage's packages are not classified with)
    models = sorted(d for d in (ROOT / "models").glob("*") if (d / "model.json").is_file()
                    and json.loads((d / "model.json").read_text()).get("task") in ("finger-count", "digit"))
    assert models, "no model packages under models/: make models"
    image = next((ROOT / "tests" / "data" / "hands" / "3").glob("*.JPG"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINGERCOUNT_")}
    try:
        res = subprocess.run([sys.executable, "-m", "edge", "classify", str(image), "--model",
                              str(models[0]), "--precision", "int8"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120, preexec_fn=mdwe)
    except subprocess.SubprocessError as e:
        pytest.fail(f"this kernel cannot enforce PR_SET_MDWE (Linux >= 6.3 needed): {e}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert '"label"' in res.stdout, res.stdout
