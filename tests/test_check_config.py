"""`fingercount check-config`: the effective configuration with every default resolved, then one
line per thing `run` opens (model, camera, broker, state dir), tried for real: the replay
camera, a real mosquitto, the shipped model. The exit status says whether `run` would work."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from edge.cli import main
from tests.conftest import HANDS, ROOT, free_port


def check(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict, dict[str, tuple[bool, str]], str]:
    """(exit code, the printed config, {check: (passed, text)}, stderr)."""
    code = main(["check-config", *argv])
    cap = capsys.readouterr()
    config_part, _, checks_part = cap.out.partition("checks:\n")
    lines = {}
    for ln in checks_part.splitlines():
        if ln.startswith("  ✓ ") or ln.startswith("  ✗ "):
            name, _, text = ln[4:].partition(": ")
            lines[name] = (ln[2] == "✓", text)
    return code, yaml.safe_load(config_part), lines, cap.err


def test_everything_there_passes_and_prints_resolved_values(broker, tmp_path: Path, capsys) -> None:
    state = tmp_path / "state"
    code, cfg, lines, err = check(capsys, "--camera", f"replay:{HANDS}", "--model", "fingers-cnn",
                                  "--mqtt", f"127.0.0.1:{broker.port}", "--state-dir", str(state),
                                  "--device-id", "desk")
    assert code == 0, (lines, err)
    # resolved, not null: where the models are, the client id the daemon will use
    assert cfg["models_dir"] == str(ROOT / "models")
    assert cfg["mqtt"]["client_id"] == "fingercount-desk"
    assert cfg["state_dir"] == str(state) and cfg["model"]["name"] == "fingers-cnn"
    assert set(lines) == {"model", "camera", "mqtt", "state dir", "web"}
    assert all(ok for ok, _ in lines.values()), lines
    assert lines["web"][1].startswith("off")
    assert lines["model"][1].startswith("fingers-cnn@") and "checksums" in lines["model"][1]
    assert "gave a 100x100 frame" in lines["camera"][1]
    assert f"127.0.0.1:{broker.port}" in lines["mqtt"][1] and "accepted" in lines["mqtt"][1]
    assert "run will create it" in lines["state dir"][1]
    assert not state.exists()  # a check, not a change


def test_each_failing_check_is_its_own_line_and_the_exit_status_says_so(tmp_path: Path, capsys) -> None:
    closed = free_port()  # nothing listens there
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "state").write_text("a file where the state dir should be\n")
    code, _, lines, err = check(capsys, "--camera", f"replay:{tmp_path / 'no-such-folder'}",
                                "--model", str(tmp_path / "missing-model"),
                                "--mqtt", f"127.0.0.1:{closed}", "--state-dir", str(ro / "state"),
                                "--timeout", "2")
    assert code == 1
    assert {name: ok for name, (ok, _) in lines.items()} == {
        "model": False, "camera": False, "mqtt": False, "state dir": False, "web": True}, lines
    assert "no-such-folder" in lines["camera"][1]
    assert "cannot connect" in lines["mqtt"][1] and "refused" in lines["mqtt"][1].lower()
    assert "not a directory" in lines["state dir"][1]
    assert err.count("\n") == 1 and "4 of 5 checks failed" in err and "would not work" in err


@pytest.fixture
def mosq_dir() -> Iterator[Path]:
    # mosquitto started as root reads its password file as its own user; tmp_path is private
    d = Path(tempfile.mkdtemp(prefix="fingercount-mosq-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_a_broker_that_refuses_the_login_fails_the_mqtt_check(broker_factory, mosq_dir: Path,
                                                               tmp_path: Path, capsys,
                                                               monkeypatch) -> None:
    import subprocess

    pw = mosq_dir / "passwd"  # readable by the mosquitto user
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "pi", "right"], check=True, capture_output=True)
    pw.chmod(0o644)
    b = broker_factory(f"allow_anonymous false\npassword_file {pw}\n")
    given = tmp_path / "given"
    given.write_text("wrong\n")
    monkeypatch.setenv("FINGERCOUNT_MQTT__USERNAME", "pi")
    monkeypatch.setenv("FINGERCOUNT_MQTT__PASSWORD_FILE", str(given))
    argv = ("--camera", f"replay:{HANDS}", "--model", "fingers-cnn", "--mqtt", f"127.0.0.1:{b.port}",
            "--state-dir", str(tmp_path / "s"))
    code, _, lines, _ = check(capsys, *argv)
    assert code == 1 and lines["mqtt"][0] is False
    assert "refused the login" in lines["mqtt"][1], lines["mqtt"]
    assert all(ok for name, (ok, _) in lines.items() if name != "mqtt")
    given.write_text("right\n")
    code, _, lines, _ = check(capsys, *argv)
    assert code == 0 and lines["mqtt"][0] and "as pi" in lines["mqtt"][1], lines["mqtt"]


def test_a_name_that_does_not_resolve_and_a_silent_port(tmp_path: Path, capsys) -> None:
    # .invalid never resolves (RFC 6761): no network is asked for an answer it could give
    code, _, lines, _ = check(capsys, "--camera", f"replay:{HANDS}", "--model", "fingers-cnn",
                              "--mqtt", "broker.invalid", "--state-dir", str(tmp_path))
    assert code == 1 and "does not resolve" in lines["mqtt"][1], lines["mqtt"]
    # a port that accepts TCP but never speaks MQTT: the timeout, not a hang
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        code, _, lines, _ = check(capsys, "--camera", f"replay:{HANDS}", "--model", "fingers-cnn",
                                  "--mqtt", f"127.0.0.1:{s.getsockname()[1]}",
                                  "--state-dir", str(tmp_path), "--timeout", "1")
    assert code == 1 and "no MQTT answer within 1 s" in lines["mqtt"][1], lines["mqtt"]


def test_mqtt_none_and_embedded(tmp_path: Path, capsys, monkeypatch) -> None:
    code, cfg, lines, _ = check(capsys, "--camera", f"replay:{HANDS}", "--model", "fingers-cnn",
                                "--mqtt", "none", "--state-dir", str(tmp_path))
    assert code == 0 and lines["mqtt"] == (True, "none (run without a broker)")
    port = free_port()
    monkeypatch.setenv("FINGERCOUNT_MQTT__PORT", str(port))
    code, cfg, lines, _ = check(capsys, "--camera", f"replay:{HANDS}", "--model", "fingers-cnn",
                                "--mqtt", "embedded", "--state-dir", str(tmp_path))
    assert code == 0 and f"127.0.0.1:{port}" in lines["mqtt"][1] and cfg["mqtt"]["host"] == "embedded"
    with socket.socket() as s:  # someone else has the port: the embedded broker could not start
        s.bind(("127.0.0.1", port))
        s.listen(1)
        code, _, lines, _ = check(capsys, "--camera", f"replay:{HANDS}", "--model", "fingers-cnn",
                                  "--mqtt", "embedded", "--state-dir", str(tmp_path))
    assert code == 1 and "is taken" in lines["mqtt"][1]


def test_a_damaged_model_fails_the_model_check(tmp_path: Path, capsys) -> None:
    pkg = tmp_path / "fingers-cnn"
    shutil.copytree(ROOT / "models" / "fingers-cnn", pkg)
    f = pkg / "fingers-cnn_int8.tflite"
    f.write_bytes(f.read_bytes()[:-16] + bytes(16))  # same size, other bytes: the sha256 differs
    code, _, lines, _ = check(capsys, "--camera", f"replay:{HANDS}", "--model", str(pkg),
                              "--mqtt", "none", "--state-dir", str(tmp_path / "s"))
    assert code == 1 and lines["model"][0] is False and "sha256" in lines["model"][1], lines["model"]


def test_a_web_password_file_that_cannot_be_read_fails_the_web_check(tmp_path: Path, capsys,
                                                                     monkeypatch) -> None:
    monkeypatch.setenv("FINGERCOUNT_WEB__LISTEN", "127.0.0.1:8080")
    monkeypatch.setenv("FINGERCOUNT_WEB__PASSWORD_FILE", str(tmp_path / "no-such-file"))
    code, _, lines, err = check(capsys, "--camera", f"replay:{HANDS}", "--model", "fingers-cnn",
                                "--mqtt", "none", "--state-dir", str(tmp_path / "state"))
    assert code == 1
    assert lines["web"][0] is False and "no-such-file" in lines["web"][1], lines
