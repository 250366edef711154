"""Training loops: augmented batches through edge preprocessing, early stopping, seeded."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import keras
import numpy as np

from converter.augment import AugmentConfig, augment
from converter.augment_digits import DigitAugmentConfig, augment_digit
from converter.data import Split
from edge.runtime.digits import mnist_like
from edge.runtime.preprocess import prepare

log = logging.getLogger(__name__)


def model_input(frame: np.ndarray, size: int, channels: int, task: str = "") -> np.ndarray:
    """A frame -> the model's uint8 input, by the edge's own code (Classifier.preprocess)."""
    if task == "digit":
        return mnist_like(frame, size, size, channels)
    return prepare(frame, size, size, channels)


def prepare_all(frames: list[np.ndarray], size: int, channels: int, task: str = "") -> np.ndarray:
    """Full frames -> (N, size, size, C) uint8 model input, exactly as on the device."""
    return np.stack([model_input(f, size, channels, task) for f in frames]) if frames else \
        np.zeros((0, size, size, channels), np.uint8)


class AugmentedBatches(keras.utils.PyDataset):
    """Random augmentation of the full frames each epoch, then device preprocessing."""

    def __init__(self, split: Split, size: int, channels: int, batch: int,
                 cfg: AugmentConfig | DigitAugmentConfig | None, seed: int,
                 y_map: np.ndarray | None = None, task: str = ""):
        super().__init__(workers=1, use_multiprocessing=False)
        self.split, self.size, self.channels, self.batch = split, size, channels, batch
        self.cfg = cfg
        self.task = task
        self.seed, self.epoch = seed, 0
        self.rng = np.random.default_rng(seed)
        self.y = split.y if y_map is None else y_map[split.y]
        self.order = self.rng.permutation(len(split))
        if cfg is None:
            self.plain = prepare_all(split.frames, size, channels, task)

    def __len__(self) -> int:
        return math.ceil(len(self.split) / self.batch)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.split))
        self.epoch += 1

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch:(i + 1) * self.batch]
        if self.cfg is None:
            x = self.plain[idx]
        elif isinstance(self.cfg, DigitAugmentConfig):
            # a generator per batch: the same digits whichever worker thread makes the batch
            rng = np.random.default_rng((self.seed, self.epoch, i))
            x = np.stack([model_input(augment_digit(self.split.frames[j], self.cfg, rng),
                                      self.size, self.channels, self.task) for j in idx])
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
        epochs: int, lr: float, batch: int, aug: AugmentConfig | DigitAugmentConfig | None, seed: int,
        patience: int, label_smoothing: float = 0.0, y_map: np.ndarray | None = None,
        tag: str = "", task: str = "", average_last: int = 0) -> FitResult:
    """Adam with cosine decay; keep the weights of the best validation epoch (patience > 0),
    or the mean of the last `average_last` epochs' weights (an ensemble of epochs, as SWA)."""
    import time

    n_classes = int(model.output_shape[-1])
    steps = max(1, math.ceil(len(train) / batch)) * max(1, epochs)
    sched = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(sched),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=["accuracy"])
    train_ds = _OneHot(AugmentedBatches(train, size, channels, batch, aug, seed, y_map, task), n_classes)
    yv = val.y if y_map is None else y_map[val.y]
    xv = prepare_all(val.frames, size, channels, task).astype(np.float32)
    cbs: list[keras.callbacks.Callback] = [keras.callbacks.EarlyStopping(
        "val_accuracy", patience=patience, mode="max", restore_best_weights=True)] if patience else []
    if average_last > 1:
        cbs.append(AverageLastEpochs(average_last, epochs))
    if tag:
        print(f"--- training {tag}: {len(train)} train / {len(val)} validation images, "
              f"up to {epochs} epochs", flush=True)
    t0 = time.time()
    h = model.fit(train_ds, validation_data=(xv, keras.utils.to_categorical(yv, n_classes)),
                  epochs=epochs, callbacks=cbs, verbose=2)
    hist = {k: [float(v) for v in vs] for k, vs in h.history.items()}
    if average_last > 1 and len(xv):
        acc = float(np.mean(np.argmax(model.predict(xv, verbose=0), axis=1) == yv))
        hist["val_accuracy_averaged"] = [acc]
        print(f"validation accuracy of the mean of the last {average_last} epochs' weights: "
              f"{acc * 100:.2f} %", flush=True)
    return FitResult(hist, len(h.history.get("loss", [])), time.time() - t0)


class AverageLastEpochs(keras.callbacks.Callback):
    """Sets the model to the mean of its weights at the end of the last n epochs (of `epochs`):
    on the cosine schedule's low-rate tail the weights wander around a minimum, their mean sits
    nearer its centre (stochastic weight averaging). Only for models without BatchNorm, whose
    moving statistics would not match the averaged weights."""

    def __init__(self, n: int, epochs: int):
        super().__init__()
        self.n, self.epochs = n, epochs
        self.sum: list[np.ndarray] | None = None
        self.count = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch < self.epochs - self.n:
            return
        w = [np.asarray(v, dtype=np.float64) for v in self.model.get_weights()]
        self.sum = w if self.sum is None else [a + b for a, b in zip(self.sum, w)]
        self.count += 1

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.sum is not None and self.count > 1:
            self.model.set_weights([(s / self.count).astype(np.float32) for s in self.sum])
            log.info("weights: the mean of the last %d epochs", self.count)


class _OneHot(keras.utils.PyDataset):
    def __init__(self, inner: AugmentedBatches, n: int):
        # digits: two threads make the next batches (OpenCV releases the GIL) while TF trains
        workers = 2 if isinstance(inner.cfg, DigitAugmentConfig) else 1
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
        self.inner, self.n = inner, n

    def __len__(self) -> int:
        return len(self.inner)

    def on_epoch_end(self) -> None:
        self.inner.on_epoch_end()

    def __getitem__(self, i: int):
        x, y = self.inner[i]
        return x, keras.utils.to_categorical(y, self.n)
