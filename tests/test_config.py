from pathlib import Path

import pytest

from edge.cli import main
from edge.config import load_config
from edge.errors import ConfigError


def test_defaults_and_env_override(tmp_path: Path) -> None:
    cfg = load_config(None, environ={"FINGERCOUNT_MQTT__HOST": "broker.local", "FINGERCOUNT_MQTT__PORT": "8883",
                                     "FINGERCOUNT_STATE_DIR": str(tmp_path)})
    assert cfg.mqtt.host == "broker.local" and cfg.mqtt.port == 8883
    assert cfg.state_dir == tmp_path
    assert cfg.model.precision == "int8" and cfg.smoothing.window == 5


def test_unknown_key_names_key_and_line(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("device_id: kitchen\nmqtt:\n  host: x\n  prot: 1883\n")
    with pytest.raises(ConfigError) as e:
        load_config(f, environ={})
    assert "c.yaml:4" in str(e.value) and "mqtt.prot" in str(e.value) and "unknown key" in str(e.value)


def test_bad_value_and_bad_env(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("smoothing:\n  min_confidence: 3\n")
    with pytest.raises(ConfigError, match="c.yaml:2: smoothing.min_confidence"):
        load_config(f, environ={})
    with pytest.raises(ConfigError, match="environment.*mqtt.hots"):
        load_config(None, environ={"FINGERCOUNT_MQTT__HOTS": "x"})


def test_tls_pair_checked() -> None:
    with pytest.raises(ConfigError, match="cert_file and tls.key_file"):
        load_config(None, {"mqtt": {"tls": {"cert_file": "/a"}}}, environ={})


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  precison: int8\n")
    assert main(["check-config", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.precison: unknown key" in err and "c.yaml:2" in err
    f.write_text("model:\n  precision: fp16\n")
    assert main(["check-config", "--config", str(f)]) == 0
    assert "precision: fp16" in capsys.readouterr().out


def test_global_options_before_or_after_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for argv in (["--state-dir", str(tmp_path), "check-config"], ["check-config", "--state-dir", str(tmp_path)]):
        assert main(argv) == 0
        assert f"state_dir: {tmp_path}" in capsys.readouterr().out


def test_camera_rotate_is_a_quarter_turn(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("camera:\n  rotate: 45\n")
    with pytest.raises(ConfigError, match="c.yaml:2: camera.rotate.*0, 90, 180 or 270") as e:
        load_config(f, environ={})
    assert "\n" not in str(e.value)
    assert load_config(None, environ={"FINGERCOUNT_CAMERA__ROTATE": "180"}).camera.rotate == 180
