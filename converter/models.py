"""Keras model builders. Every model takes raw pixels 0..255; normalisation is its first layer."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import keras
from keras import layers

log = logging.getLogger(__name__)

EMBEDDING_LAYER = "embedding"
HEAD_LAYER = "head"


OFFLINE_ENV = "FINGERCOUNT_OFFLINE"


def offline() -> bool:
    """An explicit offline build (FINGERCOUNT_OFFLINE=1, or `build --offline`): nothing is
    downloaded and no download host is probed; the tests always set it."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def imagenet_available(timeout: float = 2.0) -> bool:
    """True when ImageNet weights are cached or the download host answers quickly.

    Offline machines fail DNS or the connect at once; we never wait on keras' own
    download, which can hang for minutes."""
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    if cache.is_dir() and any(p.name.startswith("mobilenet") for p in cache.iterdir()):
        return True
    try:
        with socket.create_connection(("storage.googleapis.com", 443), timeout=timeout):
            return True
    except OSError:
        return False


def mobilenet_backbone(size: int, version: int, alpha: float, embedding_dim: int,
                       weights: str | None, dropout: float = 0.2, norm: bool = False) -> keras.Model:
    """image (0..255) -> embedding (ReLU, so it quantizes to uint8 without waste).

    norm: BatchNorm between the Dense and the ReLU keeps the pre-activations centred, so
    units do not die during from-scratch training (without it most of them did)."""
    inp = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="to_pm1")(inp)
    app = keras.applications.MobileNetV2 if version == 2 else keras.applications.MobileNet
    kw = {"alpha": alpha, "include_top": False, "weights": weights, "input_shape": (size, size, 3)}
    if version == 1:
        kw["dropout"] = 0.0
    base = app(**kw)
    base._name = "mobilenet"
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="drop_pool")(x)
    if norm:
        x = layers.Dense(embedding_dim, use_bias=False, name="embedding_dense")(x)
        x = layers.BatchNormalization(name="embedding_bn")(x)
        x = layers.ReLU(name=EMBEDDING_LAYER)(x)
    else:
        x = layers.Dense(embedding_dim, activation="relu", name=EMBEDDING_LAYER)(x)
    model = keras.Model(inp, x, name="backbone")
    return fast_batchnorm(model) if weights is None else model


def compact_backbone(size: int, widths: tuple[int, ...] = (16, 32, 48, 64, 96),
                     embedding_dim: int = 0) -> keras.Model:
    """A small plain CNN for Pi Zero-class boards (~100 k parameters, ~11 M MACs at 64 px).

    Plain 3x3 convolutions rather than depthwise-separable ones: at this size the
    per-channel quantization overhead of many thin layers would eat the int8 saving."""
    inp = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="to_pm1")(inp)
    for i, w in enumerate(widths):
        x = layers.Conv2D(w, 3, strides=2 if i == 0 else 1, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if 0 < i < len(widths) - 1:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if embedding_dim:
        x = layers.Dense(embedding_dim, activation="relu", name=EMBEDDING_LAYER)(x)
    return fast_batchnorm(keras.Model(inp, x, name="backbone"))


def fast_batchnorm(model: keras.Model, momentum: float = 0.9) -> keras.Model:
    """Training from scratch on ~1,000 images is only a few hundred steps: BatchNorm's
    moving statistics must follow the weights that fast, or inference mode (validation,
    the converted model) sees stale statistics and predicts one class."""
    for layer in _all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = momentum
    return model


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def digits_cnn(size: int = 28, n_classes: int = 10, widths: tuple[int, ...] = (32, 64),
               dense: int = 96, dropout: float = 0.25) -> keras.Model:
    """The seed projects' MNIST CNN family (Conv2D, MaxPool, Dropout, Dense), a little deeper:
    two 3x3 convolutions per width, each pair pooled, then one more pooling so the Dense layer
    sees 3x3 (not the seed's 5x5x64 = 1,600 inputs, whose 205 k weights alone broke 150 KB)."""
    inp = keras.Input((size, size, 1), name="image")
    x = layers.Rescaling(1 / 255.0, name="to_01")(inp)
    for w in widths:
        x = layers.Conv2D(w, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(w, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout / 2)(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense, activation="relu")(x)
    x = layers.Dropout(dropout * 2)(x)
    out = layers.Dense(n_classes, activation="softmax", name=HEAD_LAYER)(x)
    return keras.Model(inp, out, name="digits_cnn")


def with_head(backbone: keras.Model, n_classes: int, dropout: float = 0.2,
              name: str = "classifier") -> keras.Model:
    """backbone -> dropout -> Dense softmax. The Dense layer is what head.npz holds."""
    x = layers.Dropout(dropout, name="drop_head")(backbone.output)
    out = layers.Dense(n_classes, activation="softmax", name=HEAD_LAYER)(x)
    return keras.Model(backbone.input, out, name=name)
