from pathlib import Path

import pytest

from edge.cli import main
from edge.config import load_config
from edge.errors import ConfigError
from tests.conftest import HANDS


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
    f.write_text(f"model:\n  precision: fp16\ncamera:\n  source: replay:{HANDS}\n")
    assert main(["check-config", "--config", str(f), "--mqtt", "none", "--state-dir", str(tmp_path)]) == 0
    assert "precision: fp16" in capsys.readouterr().out


def test_check_config_says_when_the_camera_cannot_be_there(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    has_picamera2 = importlib.util.find_spec("picamera2") is not None
    for source, needle in (("picamera2", None if has_picamera2 else "picamera2 module is not installed"),
                           ("opencv:97", "/dev/video97 does not exist"),
                           ("opencv:/dev/video98", "/dev/video98 does not exist")):
        monkeypatch.setenv("FINGERCOUNT_CAMERA__SOURCE", source)
        code = main(["check-config", "--state-dir", str(tmp_path), "--mqtt", "none"])
        out = capsys.readouterr().out  # the camera's line of the checks
        assert (code, needle in out if needle else True) == (1 if needle else 0, True), (source, out)


def test_global_options_before_or_after_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINGERCOUNT_CAMERA__SOURCE", f"replay:{HANDS}")
    for argv in (["--state-dir", str(tmp_path), "check-config", "--mqtt", "none"],
                 ["check-config", "--state-dir", str(tmp_path), "--mqtt", "none"]):
        assert main(argv) == 0
        assert f"state_dir: {tmp_path}" in capsys.readouterr().out


def test_camera_rotate_is_a_quarter_turn(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("camera:\n  rotate: 45\n")
    with pytest.raises(ConfigError, match="c.yaml:2: camera.rotate.*0, 90, 180 or 270") as e:
        load_config(f, environ={})
    assert "\n" not in str(e.value)
    assert load_config(None, environ={"FINGERCOUNT_CAMERA__ROTATE": "180"}).camera.rotate == 180


def test_a_config_that_is_not_utf8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = tmp_path / "c.yaml"
    f.write_bytes(b"device_id: caf\xe9\n")
    assert main(["check-config", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not UTF-8" in err


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("mqtt:\n  host: a\nmodel:\n  threads: 1\nmqtt:\n  port: 1884\n")
    with pytest.raises(ConfigError, match=r"c.yaml:5: mqtt: given twice \(first on line 1\)"):
        load_config(f, environ={})


def test_each_error_names_the_layer_that_gave_the_value(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("mqtt:\n  port: 0\n")
    with pytest.raises(ConfigError) as e:
        load_config(f, {"model": {"threads": 0}}, environ={"FINGERCOUNT_MQTT__KEEPALIVE": "1"})
    parts = str(e.value).split("; ")
    assert sorted(parts) == sorted([
        f"{f}:2: mqtt.port: Input should be greater than or equal to 1",
        "environment (FINGERCOUNT_MQTT__KEEPALIVE): mqtt.keepalive: Input should be greater than or equal to 5",
        "command line (--threads): model.threads: Input should be greater than or equal to 1"])


def test_text_settings_from_the_environment_stay_text() -> None:
    cfg = load_config(None, environ={"FINGERCOUNT_MQTT__CLIENT_ID": "123", "FINGERCOUNT_MQTT__PASSWORD": "true",
                                     "FINGERCOUNT_MQTT__BASE_TOPIC": "2024", "FINGERCOUNT_MQTT__PORT": "1884"})
    assert (cfg.mqtt.client_id, cfg.mqtt.password, cfg.mqtt.base_topic, cfg.mqtt.port) == ("123", "true", "2024", 1884)


def test_check_config_masks_the_password_and_checks_what_run_opens(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINGERCOUNT_MQTT__PASSWORD", "s3cret-pw")
    monkeypatch.setenv("FINGERCOUNT_CAMERA__SOURCE", "replay:tests/data/hands@8")
    monkeypatch.setenv("FINGERCOUNT_MODEL__NAME", "fingers-cnn")
    assert main(["check-config", "--state-dir", str(tmp_path), "--mqtt", "none"]) == 0
    out = capsys.readouterr().out
    assert "s3cret-pw" not in out and "password: '********'" in out

    monkeypatch.setenv("FINGERCOUNT_MODEL__NAME", "no-such-model")
    monkeypatch.setenv("FINGERCOUNT_CAMERA__SOURCE", f"replay:{tmp_path / 'missing'}")
    monkeypatch.setenv("FINGERCOUNT_MQTT__PASSWORD_FILE", str(tmp_path / "pw"))
    monkeypatch.delenv("FINGERCOUNT_MQTT__PASSWORD")
    assert main(["check-config", "--state-dir", str(tmp_path)]) == 1
    cap = capsys.readouterr()
    assert cap.err.count("\n") == 1 and "3 of 5 checks failed (model, camera, mqtt)" in cap.err
    out = cap.out
    assert "model 'no-such-model' not found" in out and "missing does not exist" in out and "password_file" in out


def test_options_are_not_abbreviated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # `--model` on a command without it must not quietly become `--models-dir`.
    with pytest.raises(SystemExit) as e:
        main(["models", "--model", "fingers-cnn"])
    assert e.value.code == 2 and "unrecognized arguments: --model" in capsys.readouterr().err


def test_labels_for_a_bare_tflite_reach_the_model(tmp_path: Path) -> None:
    from edge.cli import build_parser, config_overrides
    from edge.runtime.loader import open_package

    tflite = Path("models/fingers-cnn/fingers-cnn_int8.tflite").resolve()
    args = build_parser().parse_args(["run", "--model", str(tflite), "--labels", "a,b,c,d,e,f"])
    cfg = load_config(None, config_overrides(args), environ={})
    assert open_package(cfg).labels == ["a", "b", "c", "d", "e", "f"]


@pytest.mark.parametrize("gpio, needle", [
    ("capture_pin: 17\n  label_pin: 17", "capture_pin and label_pin are both GPIO 17"),
    ("led_pin: 27", "label_pin and led_pin are both GPIO 27"),
    ("capture_pin: true", "gpio.capture_pin: a pin is a BCM number"),
    ("capture_pin: 28", "gpio.capture_pin: Input should be less than or equal to 27"),
])
def test_gpio_pins_are_header_pins_and_distinct(tmp_path: Path, gpio: str, needle: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(f"gpio:\n  {gpio}\n")
    with pytest.raises(ConfigError, match=needle):
        load_config(f, environ={})


def test_a_control_character_in_the_device_id_is_refused() -> None:
    # A tab reached the topics, and the broker dropped every connection that carried it.
    with pytest.raises(ConfigError, match="device_id: .*control characters"):
        load_config(None, environ={"FINGERCOUNT_DEVICE_ID": "kitchen\tpi"})


def test_a_clash_set_by_file_and_environment_names_both_and_gpio_off_has_none(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("gpio:\n  capture_pin: 17\n")
    env = {"FINGERCOUNT_GPIO__LABEL_PIN": "17"}
    with pytest.raises(ConfigError) as e:
        load_config(f, environ=env)
    assert str(e.value) == (f"{f}:1 + environment (FINGERCOUNT_GPIO__LABEL_PIN): gpio: capture_pin and "
                            "label_pin are both GPIO 17; each needs its own pin")
    assert load_config(f, environ={**env, "FINGERCOUNT_GPIO__ENABLED": "false"}).gpio.label_pin == 17
    f.write_text('gpio:\n  capture_pin: "5"\n')  # quoted, as a port may be
    assert load_config(f, environ={}).gpio.capture_pin == 5


def test_mqtt_ids_and_topics_from_the_environment_are_literal_and_checked() -> None:
    with pytest.raises(ConfigError, match="base_topic: must be a plain topic without wildcards, control"):
        load_config(None, environ={"FINGERCOUNT_MQTT__BASE_TOPIC": "a\nb"})  # YAML folded it to "a b"
    with pytest.raises(ConfigError, match="client_id: must not contain control characters"):
        load_config(None, environ={"FINGERCOUNT_MQTT__CLIENT_ID": "pi\t1"})
    with pytest.raises(ConfigError, match="device_id: String should have at most 64 characters"):
        load_config(None, environ={"FINGERCOUNT_DEVICE_ID": "x" * 66000})
    with pytest.raises(ConfigError, match="model.name: String should have at least 1 character"):
        load_config(None, {"model": {"name": ""}}, environ={})


@pytest.mark.parametrize("exists, writable, want_system", [(False, False, False), (True, False, False),
                                                          (True, True, True)])
def test_root_gets_the_system_state_dir_only_where_it_exists_and_is_writable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exists: bool, writable: bool,
        want_system: bool) -> None:
    import edge.config as config

    system = tmp_path / "var-lib-fingercount"
    if exists:
        system.mkdir()
    monkeypatch.setattr(config, "SYSTEM_STATE_DIR", system)
    monkeypatch.setattr(config.os, "geteuid", lambda: 0)  # as root on a workstation
    real_access = config.os.access
    monkeypatch.setattr(config.os, "access",
                        lambda p, mode: writable if Path(p) == system else real_access(p, mode))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    got = load_config(None, environ={}).state_dir
    assert got == (system if want_system else tmp_path / "xdg" / "fingercount")
