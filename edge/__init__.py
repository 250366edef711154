"""fingercount edge package: runs on the device; never imports TensorFlow or Keras."""

__version__ = "0.1.0"
