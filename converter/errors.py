"""Converter errors, importable without TensorFlow (the CLI reports them as one line)."""

from __future__ import annotations


class QuantizationError(RuntimeError):
    """A converted model does not have the I/O the package contract requires."""
