"""Converter errors, importable without TensorFlow (the CLI reports them as one line, exit 2)."""

from __future__ import annotations


class QuantizationError(RuntimeError):
    """A converted model does not have the I/O the package contract requires."""


class ConvertError(ValueError):
    """A bad input to a converter command (an option, a path, the data); found before any
    training or conversion where possible."""
