"""Training loops: augmented batches through edge preprocessing, early stopping, seeded."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import keras
import numpy as np

from converter.augment import AugmentConfig, augment
from converter.data import Split
from edge.runtime.preprocess import prepare

log = logging.getLogger(__name__)


def prepare_all(frames: list[np.ndarray], size: int, channels: int) -> np.ndarray:
    """Full frames -> (N, size, size, C) uint8 model input, exactly as on the device."""
    return np.stack([prepare(f, size, size, channels) for f in frames]) if frames else \
        np.zeros((0, size, size, channels), np.uint8)


class AugmentedBatches(keras.utils.PyDataset):
    """Random augmentation of the full frames each epoch, then device preprocessing."""

    def __init__(self, split: Split, size: int, channels: int, batch: int,
                 cfg: AugmentConfig | None, seed: int, y_map: np.ndarray | None = None):
        super().__init__(workers=1, use_multiprocessing=False)
        self.split, self.size, self.channels, self.batch = split, size, channels, batch
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        self.y = split.y if y_map is None else y_map[split.y]
        self.order = self.rng.permutation(len(split))
        if cfg is None:
            self.plain = prepare_all(split.frames, size, channels)

    def __len__(self) -> int:
        return math.ceil(len(self.split) / self.batch)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.split))

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch:(i + 1) * self.batch]
        if self.cfg is None:
            x = self.plain[idx]
        else:
            x = np.stack([prepare(augment(self.split.frames[j], self.cfg, self.rng,
                                          pool=self.split.frames),
                                  self.size, self.size, self.channels) for j in idx])
        return x.astype(np.float32), self.y[idx]


@dataclass
class FitResult:
    history: dict = field(default_factory=dict)
    epochs: int = 0
    seconds: float = 0.0


def fit(model: keras.Model, train: Split, val: Split, *, size: int, channels: int,
        epochs: int, lr: float, batch: int, aug: AugmentConfig | None, seed: int,
        patience: int, label_smoothing: float = 0.0, y_map: np.ndarray | None = None,
        tag: str = "") -> FitResult:
    """Adam with cosine decay; keep the weights of the best validation epoch."""
    import time

    n_classes = int(model.output_shape[-1])
    steps = max(1, math.ceil(len(train) / batch)) * max(1, epochs)
    sched = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(sched),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=["accuracy"])
    train_ds = _OneHot(AugmentedBatches(train, size, channels, batch, aug, seed, y_map), n_classes)
    yv = val.y if y_map is None else y_map[val.y]
    xv = prepare_all(val.frames, size, channels).astype(np.float32)
    cbs = [keras.callbacks.EarlyStopping("val_accuracy", patience=patience, mode="max",
                                         restore_best_weights=True)] if patience else []
    if tag:
        print(f"--- training {tag}: {len(train)} train / {len(val)} validation images, "
              f"up to {epochs} epochs", flush=True)
    t0 = time.time()
    h = model.fit(train_ds, validation_data=(xv, keras.utils.to_categorical(yv, n_classes)),
                  epochs=epochs, callbacks=cbs, verbose=2)
    return FitResult({k: [float(v) for v in vs] for k, vs in h.history.items()},
                     len(h.history.get("loss", [])), time.time() - t0)


class _OneHot(keras.utils.PyDataset):
    def __init__(self, inner: AugmentedBatches, n: int):
        super().__init__(workers=1, use_multiprocessing=False)
        self.inner, self.n = inner, n

    def __len__(self) -> int:
        return len(self.inner)

    def on_epoch_end(self) -> None:
        self.inner.on_epoch_end()

    def __getitem__(self, i: int):
        x, y = self.inner[i]
        return x, keras.utils.to_categorical(y, self.n)
