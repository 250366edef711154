"""edge/machine.py: a bench under CPU emulation (qemu-user) says so in its header.

The real case runs in `make test-arm64` (tools/arm64/), where the board is aarch64 under
qemu; here the evidence is put in front of the same functions: a sysfs modalias file of
the kernel's CPU, the process's architecture and the environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge import machine


@pytest.fixture
def kernel_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def put(modalias: str, arch: str) -> None:
        f = tmp_path / "modalias"
        f.write_text(modalias + "\n")
        monkeypatch.setattr(machine, "CPU_MODALIAS", f)
        monkeypatch.setattr(machine.platform, "machine", lambda: arch)
    monkeypatch.delenv("FINGERCOUNT_EMULATED", raising=False)
    monkeypatch.delenv("QEMU_CPU", raising=False)
    return put


X86 = "cpu:type:x86,ven0002fam0019mod0001:feature:,0000,0001,0002"
ARM = "cpu:type:aarch64:feature:,0000,0001,0002,0003"


def test_native_x86_and_native_arm_are_not_emulated(kernel_cpu) -> None:
    kernel_cpu(X86, "x86_64")
    assert machine.emulation() is None
    kernel_cpu(ARM, "aarch64")
    assert machine.emulation() is None


def test_aarch64_process_on_an_x86_kernel_is_emulated(kernel_cpu, monkeypatch) -> None:
    kernel_cpu(X86, "aarch64")
    assert machine.emulation() == "the kernel runs on x86, this process is aarch64"
    monkeypatch.setenv("QEMU_CPU", "cortex-a72")
    assert machine.emulation() == "the kernel runs on x86, this process is aarch64; QEMU_CPU=cortex-a72"


def test_harness_variable_and_qemu_cpu_alone(kernel_cpu, monkeypatch) -> None:
    kernel_cpu(ARM, "aarch64")
    monkeypatch.setenv("FINGERCOUNT_EMULATED", "qemu-aarch64 7.2")
    assert machine.emulation() == "FINGERCOUNT_EMULATED=qemu-aarch64 7.2"
    monkeypatch.delenv("FINGERCOUNT_EMULATED")
    monkeypatch.setenv("QEMU_CPU", "max")
    assert "QEMU_CPU=max" in (machine.emulation() or "")


def test_unreadable_sysfs_is_no_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "CPU_MODALIAS", tmp_path / "absent")
    monkeypatch.delenv("FINGERCOUNT_EMULATED", raising=False)
    monkeypatch.delenv("QEMU_CPU", raising=False)
    assert machine._kernel_cpu_type() is None and machine.emulation() is None


def test_header_first_line_says_emulated_not_pi_figures() -> None:
    info = {"cpu": "qemu-user cortex-a72", "arch": "aarch64", "cores": 2, "usable_cores": 2,
            "emulated": "the kernel runs on x86, this process is aarch64"}
    lines = machine.describe(info)
    assert lines[0].startswith("EMULATED: ") and "not Raspberry Pi figures" in lines[0]
    assert not machine.describe({**info, "emulated": None})[0].startswith("EMULATED")


def test_the_variable_is_not_read_as_a_config_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.config import env_overrides
    monkeypatch.setenv("FINGERCOUNT_EMULATED", "qemu")
    assert "emulated" not in env_overrides()  # an unknown key would be an error
