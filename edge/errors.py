"""One family of errors. The CLI prints them as one line (traceback only with --debug)."""

from __future__ import annotations


class FingercountError(Exception):
    """Base of every error the user should see as one clear line."""


class ConfigError(FingercountError, ValueError):
    """The configuration file or an override is invalid."""


class ModelError(FingercountError, ValueError):
    """A model package or .tflite file is missing, corrupt or does not match model.json."""


class RuntimeNotFound(FingercountError, ImportError):
    """No TFLite interpreter (ai-edge-litert, tflite-runtime, tensorflow) is installed."""


class CameraError(FingercountError, OSError):
    """A camera source could not be opened or stopped delivering frames."""


class SampleError(FingercountError, OSError):
    """A sample could not be stored (bad label, disk full, ...)."""


class RetrainError(FingercountError, RuntimeError):
    """On-device retraining could not run or its result was refused."""


class CommandError(FingercountError, ValueError):
    """An MQTT or CLI command was malformed, unknown or not allowed now."""
