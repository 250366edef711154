"""Configuration: declared once, validated loudly.

One YAML file, every key optional, every key overridable from the environment as
FINGERCOUNT_<SECTION>__<KEY> (e.g. FINGERCOUNT_MQTT__HOST). Unknown keys are errors
that name the key and, for files, the line.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.errors import ConfigError
from edge.redact import redact

DEFAULT_CONFIG_PATH = Path("/etc/fingercount/config.yaml")
ENV_PREFIX = "FINGERCOUNT_"
# Environment variables with this prefix that are not config fields.
# FINGERCOUNT_OFFLINE: the converter's "download nothing"; FINGERCOUNT_EMULATED: set by an emulation
# harness (edge/machine.py, make test-arm64).
_ENV_NOT_CONFIG = {"FINGERCOUNT_CONFIG", "FINGERCOUNT_DEBUG", "FINGERCOUNT_OFFLINE", "FINGERCOUNT_EMULATED"}

Precision = Literal["int8", "fp16", "fp32"]


MAX_THREADS = 64  # interpreter threads: model.threads, and every --threads

class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


SYSTEM_STATE_DIR = Path("/var/lib/fingercount")


def _default_state_dir() -> Path:
    # systemd's StateDirectory= sets $STATE_DIRECTORY. The system folder only when it exists
    # and is writable (the service made it); anyone else, root on a workstation included,
    # gets the XDG path, as --help says.
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    system = SYSTEM_STATE_DIR
    if system.is_dir() and os.access(system, os.W_OK):
        return system
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "fingercount"


class ModelSection(_Section):
    name: str = Field("fingers-landmarks", min_length=1, description="model name in models_dir, or a path")
    precision: Precision = Field("int8", description="which variant to run")
    threads: int = Field(2, ge=1, le=MAX_THREADS, description="interpreter threads")
    labels: Optional[list[str]] = Field(None, description="labels of a bare .tflite, in output order "
                                        "(a package's model.json has its own)")


class CameraSection(_Section):
    source: str = Field("picamera2", description="picamera2 | opencv:N|DEV|URL | replay:PATH[@FPS]")
    width: int = Field(640, ge=16, le=8192, description="capture width")
    height: int = Field(480, ge=16, le=8192, description="capture height")
    fps: float = Field(30, gt=0, le=240, description="requested frame rate")
    rotate: Literal[0, 90, 180, 270] = Field(0, description="degrees clockwise that turn the camera's image upright: 0, 90, 180, 270")
    roi: Optional[list[int]] = Field(None, description="[x, y, w, h] region to classify (after rotate); "
                                                       "default centre square")
    stall_s: float = Field(5, gt=0, description="seconds without a fresh frame before reopening")

    @field_validator("roi")
    @classmethod
    def _roi(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None and (len(v) != 4 or v[2] <= 0 or v[3] <= 0 or v[0] < 0 or v[1] < 0):
            raise ValueError("roi must be [x, y, w, h] with x, y >= 0 and w, h > 0")
        return v


class HandsSection(_Section):
    enabled: bool = Field(True, description="locate the hand before counting fingers (finger-count models)")
    fuse_with: Optional[str] = Field(None, description="a crop classifier (e.g. fingers-cnn) whose scores are "
                                     "averaged with the landmark head's")
    palm: str = Field("palm-detection-lite", min_length=1, description="palm detection package (name or path)")
    landmark: str = Field("hand-landmark-full", min_length=1, description="hand landmark package (name or path)")
    precision: Precision = Field("fp32", description="variant of both hand models to run")
    tracking: bool = Field(True, description="crop from the last landmarks and skip detection while confident")
    min_detection: float = Field(0.5, ge=0, le=1, description="palm detection score threshold")
    min_presence: float = Field(0.5, ge=0, le=1, description="landmark presence below this = no hand / track lost")
    retry_pad: float = Field(0.25, ge=0, le=2, description="no hand found: detect again with a black border this "
                             "wide (x the frame's long side) around the frame, for hands that fill it (0: off)")
    threads: Optional[int] = Field(None, ge=1, le=MAX_THREADS, description="interpreter threads (null = model.threads)")
    mirror_retry: bool = Field(True, description="no hand found: detect once more on the mirror image (one more palm run)")


class SmoothingSection(_Section):
    window: int = Field(5, ge=1, le=1000, description="raw results averaged")
    min_confidence: float = Field(0.6, ge=0, le=1, description="below this the count is null")
    min_hold_ms: float = Field(300, ge=0, description="a new count must hold this long")


class TLSSection(_Section):
    enabled: bool = Field(False, description="connect with TLS")
    ca_file: Optional[Path] = Field(None, description="CA bundle; default system CAs")
    cert_file: Optional[Path] = Field(None, description="client certificate")
    key_file: Optional[Path] = Field(None, description="client key")
    insecure: bool = Field(False, description="skip hostname verification (testing only)")

    @model_validator(mode="after")
    def _pair(self) -> TLSSection:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together")
        return self


class MQTTSection(_Section):
    host: str = Field("localhost", description='broker host, or "embedded" for an in-process broker')
    port: int = Field(1883, ge=1, le=65535, description="broker port")
    keepalive: int = Field(30, ge=5, le=3600, description="seconds; the last will fires after ~1.5x")
    username: Optional[str] = Field(None, description="broker user")
    password: Optional[str] = Field(None, description="prefer password_file or FINGERCOUNT_MQTT__PASSWORD")
    password_file: Optional[Path] = Field(None, description="file whose first line is the password")
    client_id: Optional[str] = Field(None, min_length=1, max_length=256,
                                     description="default fingercount-<device_id>")
    tls: TLSSection = Field(default_factory=TLSSection)
    base_topic: str = Field("fingercount", description="topics are <base_topic>/<device_id>/...")
    discovery: bool = Field(True, description="publish Home Assistant discovery configs")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant discovery prefix")
    outbox_max: int = Field(1000, ge=1, le=1_000_000, description="QoS 1 messages kept until acknowledged (offline and in flight)")
    max_command_bytes: int = Field(4096, ge=64, description="larger commands are refused")

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _topic(cls, v: str) -> str:
        if not v or any(c in v for c in "#+\0") or not v.isprintable() or v.startswith("/") or v.endswith("/"):
            raise ValueError("must be a plain topic without wildcards, control characters or "
                             "leading/trailing '/'")
        return v

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not v.isprintable():
            raise ValueError("must not contain control characters")
        return v


class PublishSection(_Section):
    max_hz: float = Field(10, ge=0, description="per-frame predictions per second (0 = none)")
    stats_interval_s: float = Field(30, gt=0, description="seconds between stats messages")


class GPIOSection(_Section):
    enabled: bool = Field(True, description="use buttons and LED when a pin factory is available")
    # GPIO 0-27 are the ones on the 40-pin header.
    capture_pin: Optional[int] = Field(17, ge=0, le=27, description="BCM pin of the capture button")
    label_pin: Optional[int] = Field(27, ge=0, le=27, description="BCM pin of the label button")
    led_pin: Optional[int] = Field(22, ge=0, le=27, description="BCM pin of the status LED")
    hold_s: float = Field(3, gt=0, description="hold capture this long to retrain")
    pull_up: bool = Field(True, description="buttons connect the pin to ground")
    bounce_s: Optional[float] = Field(0.05, ge=0, description="debounce time")

    @field_validator("capture_pin", "label_pin", "led_pin", mode="before")
    @classmethod
    def _not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):  # `true` would be read as pin 1
            raise ValueError("a pin is a BCM number (0-27) or null")
        return v

    @model_validator(mode="after")
    def _distinct(self) -> GPIOSection:
        if not self.enabled:
            return self
        pins = [("capture_pin", self.capture_pin), ("label_pin", self.label_pin), ("led_pin", self.led_pin)]
        used = [(k, v) for k, v in pins if v is not None]
        for i, (k, v) in enumerate(used):
            for k2, v2 in used[:i]:
                if v == v2:
                    raise ValueError(f"{k2} and {k} are both GPIO {v}; each needs its own pin")
        return self


class SamplesSection(_Section):
    max_mb: float = Field(1024, ge=0, description="size limit of the sample store; captures beyond "
                          "it are refused (0 = none)")
    min_free_mb: float = Field(200, ge=0, description="captures are refused when less would stay free "
                               "on the disk (room for the outbox, heads and logs)")
    max_labels: int = Field(32, ge=0, description="a capture under a new label is refused when this "
                            "many labels have samples (0 = none); each is a class and an option in "
                            "Home Assistant's label select")


class RetrainSection(_Section):
    holdout: float = Field(0.2, ge=0, lt=1, description="share of user samples held out for the gate "
                           "(fewer than 3 per label: the gate cross-validates instead)")
    l2: float = Field(0.001, ge=0, description="L2 weight of the softmax head")
    max_seconds: float = Field(30, gt=0, description="training time limit")
    epochs: int = Field(200, ge=1, description="full-batch optimisation steps (upper bound)")
    min_samples_per_label: int = Field(1, ge=1, description="labels with fewer samples are skipped")


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class WebSection(_Section):
    listen: Optional[str] = Field(None, description='HOST:PORT (or PORT, on 127.0.0.1) of the web page; '
                                  'null: no web page')
    password_file: Optional[Path] = Field(None, description="file whose first line is the page's "
                                          "password; required to listen beyond loopback")
    fps: float = Field(5, gt=0, le=30, description="frames per second of the live view (/video)")
    width: int = Field(480, ge=64, le=1920, description="width the live view's frames are scaled to")
    jpeg_quality: int = Field(70, ge=10, le=95, description="JPEG quality of the live view")
    events_hz: float = Field(5, gt=0, le=30, description="predictions per second sent to each page")
    max_body_bytes: int = Field(262144, ge=1024, le=16 * 2**20, description="larger requests are "
                                "refused (413); commands are also held to mqtt.max_command_bytes")
    max_clients: int = Field(16, ge=1, le=256, description="live views and event streams at once, each")
    digits_model: str = Field("digits-cnn", min_length=1, description="model (in models_dir) of the "
                              "digit canvas page")

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if v is None or v == "" or (isinstance(v, str) and v.lower() in ("off", "none", "null")):
            return None
        if not isinstance(v, str):
            raise ValueError("must be HOST:PORT, PORT or null")
        host, port = split_listen(v)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @model_validator(mode="after")
    def _exposed(self) -> WebSection:
        if self.listen is not None and self.password_file is None \
                and split_listen(self.listen)[0] not in LOOPBACK_HOSTS:
            raise ValueError(f"listen {self.listen} is reachable from other machines: set "
                             "web.password_file (a file whose first line is the page's password), "
                             "or listen on 127.0.0.1")
        return self

    def password(self) -> Optional[str]:
        """The page's password (first line of password_file); ConfigError if unreadable or empty."""
        if self.password_file is None:
            return None
        try:
            pw = Path(self.password_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError) as e:
            raise ConfigError(f"web.password_file {self.password_file}: "
                              f"{getattr(e, 'strerror', None) or 'empty'}") from e
        if len(pw) < 8:
            raise ConfigError(f"web.password_file {self.password_file}: the password must have at "
                              "least 8 characters")
        return pw


def split_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT', '[IPv6]:PORT' or 'PORT' (127.0.0.1) -> (host, port); ValueError otherwise."""
    text = text.strip()
    if text.isdigit():
        host, port = "127.0.0.1", text
    elif text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{text!r}: expected [IPv6]:PORT")
        port = rest[1:]
    else:
        host, sep, port = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"{text!r}: expected HOST:PORT or PORT")
    if not host:
        raise ValueError(f"{text!r}: no host (HOST:PORT; 0.0.0.0 for every interface)")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: the port must be 1..65535")
    return host, int(port)


class Config(_Section):
    device_id: str = Field(default_factory=lambda: socket.gethostname().split(".")[0] or "fingercount",
                           max_length=64, description="default: the hostname")
    state_dir: Path = Field(default_factory=_default_state_dir, description="samples, heads, outbox")
    models_dir: Optional[Path] = Field(None, description="default: the shipped models/")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    model: ModelSection = Field(default_factory=ModelSection)
    camera: CameraSection = Field(default_factory=CameraSection)
    hands: HandsSection = Field(default_factory=HandsSection)
    smoothing: SmoothingSection = Field(default_factory=SmoothingSection)
    mqtt: MQTTSection = Field(default_factory=MQTTSection)
    publish: PublishSection = Field(default_factory=PublishSection)
    gpio: GPIOSection = Field(default_factory=GPIOSection)
    samples: SamplesSection = Field(default_factory=SamplesSection)
    retrain: RetrainSection = Field(default_factory=RetrainSection)
    web: WebSection = Field(default_factory=WebSection)

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, v: str) -> str:
        if not v or any(c in v for c in "/#+\0 ") or not v.isprintable():
            raise ValueError("device_id must be non-empty without '/', '#', '+', spaces or control characters")
        return v

    def resolved_models_dir(self) -> Path:
        return Path(self.models_dir) if self.models_dir else shipped_models_dir()

    def check_mqtt_files(self) -> None:
        """ConfigError if the password file or a TLS file named in mqtt: cannot be read."""
        self.mqtt_password()
        tls = self.mqtt.tls
        for label, path in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file)):
            if tls.enabled and path is not None and not path.is_file():
                raise ConfigError(f"mqtt.tls.{label}: {path} does not exist")

    def mqtt_password(self) -> Optional[str]:
        if self.mqtt.password is not None:
            return self.mqtt.password
        if self.mqtt.password_file is not None:
            try:
                return Path(self.mqtt.password_file).read_text().splitlines()[0].strip()
            except (OSError, IndexError) as e:
                raise ConfigError(f"mqtt.password_file {self.mqtt.password_file}: {e}") from e
        return None


def shipped_models_dir() -> Path:
    """models/ next to the package (source checkout or installed data)."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "models", Path("/usr/share/fingercount/models")):
        if cand.is_dir():
            return cand
    return here.parent / "models"


# ---- loading -------------------------------------------------------------------------

class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key."""


def _lines(node: yaml.Node, path: tuple = (), out: Optional[dict] = None, source: str = "config") -> dict:
    """Line of every mapping key; a key given twice in one mapping is an error (YAML would
    silently keep the last one)."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = path + (k.value,)
            line = k.start_mark.line + 1
            if key in out:
                raise ConfigError(f"{source}:{line}: {'.'.join(key)}: given twice (first on line {out[key]})")
            out[key] = line
            _lines(v, key, out, source)
    return out


def _is_text_field(path: list[str]) -> bool:
    """Whether the config field at path holds text (str or Optional[str])."""
    model: Any = Config
    for i, key in enumerate(path):
        field = getattr(model, "model_fields", {}).get(key)
        if field is None:
            return False
        ann = field.annotation
        if i == len(path) - 1:
            return ann is str or ann == Optional[str]
        model = ann
    return False


def _has(data: dict, loc: tuple) -> bool:
    d: Any = data
    for k in loc:
        if not isinstance(d, dict) or k not in d:
            return False
        d = d[k]
    return True


# Config fields that command-line flags set, for blaming the flag and not the file.
_FLAGS = {"models_dir": "--models-dir", "state_dir": "--state-dir", "camera.source": "--camera",
          "model.name": "--model", "model.precision": "--precision", "model.threads": "--threads",
          "model.labels": "--labels", "device_id": "--device-id", "mqtt.host": "--mqtt",
          "mqtt.port": "--mqtt", "web.listen": "--web"}


def _plain(msg: str) -> str:
    """pydantic's wording without its internals (class names, 'Value error, ')."""
    msg = msg.removeprefix("Value error, ")
    if "valid dictionary or instance of" in msg:
        return "must be a mapping of keys"
    if "valid path for" in msg:
        return "must be a path"
    return msg


def _leaves(data: Any, path: tuple) -> list[tuple]:
    if not isinstance(data, dict):
        return [path]
    return [leaf for k, v in data.items() for leaf in _leaves(v, (*path, k))]


def _at(data: dict, loc: tuple) -> Any:
    for k in loc:
        data = data[k]
    return data


def _blame(loc: tuple, layers: list[tuple[str, dict, dict]]) -> str:
    """Where the value at loc came from: the highest layer holding the key itself; for an
    error about a whole section (e.g. two GPIO pins alike), every layer that set keys in it."""
    for n in range(len(loc), 0, -1):
        holders = [layer for layer in layers if _has(layer[1], loc[:n])]
        if holders:
            break
    else:
        return layers[0][0]
    if n == len(loc) and not isinstance(_at(holders[-1][1], loc), dict):
        holders = holders[-1:]  # one value: the layer that won
    out = []
    for name, data, lines in holders:
        if name == "environment":
            names = [ENV_PREFIX + "__".join(leaf).upper() for leaf in _leaves(_at(data, loc[:n]), loc[:n])]
            out.append(f"environment ({', '.join(names)})")
        elif name == "command line":
            flags = sorted({_FLAGS.get(".".join(leaf), "flags") for leaf in _leaves(_at(data, loc[:n]), loc[:n])})
            out.append(f"command line ({', '.join(flags)})")
        else:
            line = lines.get(loc[:n])
            out.append(f"{name}:{line}" if line else name)
    return " + ".join(out)


def _format_errors(err: ValidationError, layers: list[tuple[str, dict, dict]]) -> str:
    """One line naming, for each error, the layer that gave the value: the file (with its
    line), an environment variable or a flag. layers: (source, data, lines), lowest first."""
    parts = []
    for e in err.errors():
        loc = tuple(str(x) for x in e["loc"])
        msg = "unknown key" if e["type"] == "extra_forbidden" else _plain(e["msg"])
        parts.append(f"{_blame(loc, layers)}: {'.'.join(loc) or '(top)'}: {msg}")
    return "; ".join(parts)


def env_overrides(environ: Optional[Mapping[str, str]] = None) -> dict:
    """FINGERCOUNT_SECTION__KEY=value -> nested dict; values parsed as YAML scalars."""
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _ENV_NOT_CONFIG:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        try:
            value = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            value = raw
        if value is not None and _is_text_field(path):
            value = raw  # literally: a client id "123", a password "true", a newline stays one
        d = out
        for p in path[:-1]:
            d = d.setdefault(p, {})
            if not isinstance(d, dict):
                raise ConfigError(f"{name}: conflicts with another FINGERCOUNT_ variable")
        d[path[-1]] = value
    return out


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def default_config_path() -> Optional[Path]:
    env = os.environ.get("FINGERCOUNT_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_config(path: Optional[Path | str] = None, overrides: Optional[dict] = None,
                environ: Optional[dict] = None) -> Config:
    """File (or default) < environment < overrides (from command-line flags)."""
    path = Path(path) if path else default_config_path()
    data: dict = {}
    lines: dict = {}
    source = str(path) if path else "config"
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
        try:
            node = yaml.compose(text, Loader=_LineLoader)
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML: {getattr(e, 'problem', e)}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys")
        lines = _lines(node, source=str(path)) if node is not None else {}
    env = env_overrides(environ)
    layers = [(source, data, lines), ("environment", env, {}), ("command line", overrides or {}, {})]
    merged = _merge(_merge(data, env), overrides or {})
    try:
        return Config.model_validate(merged)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, layers)) from None


def dump_config(cfg: Config) -> str:
    """The effective configuration as YAML, with the MQTT password masked."""
    data = cfg.model_dump(mode="json")
    if data["mqtt"].get("password") is not None:
        data["mqtt"]["password"] = "********"
    data["camera"]["source"] = redact(data["camera"]["source"])  # rtsp://user:***@
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
