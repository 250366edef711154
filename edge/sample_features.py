"""Where retraining gets each sample's features: an image backbone, or the hand's landmarks.

SampleFeatures is what edge/retrain.py needs (image -> embedding, cached in the sample
store); BackboneFeatures runs a retrainable image model's backbone, LandmarkFeatures the
hand stage and edge/hands/features.py. The store keeps what each made: embeddings with the
backbone's sha256; landmarks with the hand stage's identity, and the features made from
them with their feature version (recomputed from the stored landmarks when it changes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Optional, Protocol

import numpy as np

from edge.config import Config
from edge.hands.counter import is_landmark_package
from edge.hands.features import FEATURE_DIM, FEATURE_VERSION, GROUPS, columns, landmark_features
from edge.runtime.classifier import Backbone
from edge.runtime.package import ModelPackage, resolve_package
from edge.samples import Embedder, Sample, SampleStore, StoredHand

Progress = Callable[[int, int], None]


class SampleFeatures(Protocol):
    sha256: str  # what made the features (recorded with a head trained on them)

    def embed_frame(self, frame: np.ndarray) -> Optional[np.ndarray]: ...

    def prepare(self, store: SampleStore, deadline: Optional[float], progress: Optional[Progress]) -> int: ...

    def load(self, store: SampleStore) -> tuple[list[Sample], np.ndarray, int]: ...

    def head_info(self) -> dict: ...

    def mask(self) -> Optional[np.ndarray]: ...


class BackboneFeatures:
    """Embeddings of a retrainable image model's backbone (tflite)."""

    def __init__(self, backbone: Embedder):
        self.backbone = backbone
        self.sha256 = backbone.sha256

    def embed_frame(self, frame: np.ndarray) -> Optional[np.ndarray]:
        return self.backbone.embed_frame(frame)

    def prepare(self, store: SampleStore, deadline: Optional[float], progress: Optional[Progress]) -> int:
        return store.ensure_embeddings(self.backbone, deadline, progress)

    def load(self, store: SampleStore) -> tuple[list[Sample], np.ndarray, int]:
        samples, X = store.embeddings(self.sha256)
        return samples, X, 0

    def head_info(self) -> dict:
        return {"backbone_sha256": self.sha256}

    def mask(self) -> Optional[np.ndarray]:
        return None


class CropEmbedder:
    """A crop classifier's backbone on the hand crop (Hand.square_crop), as it runs behind the
    hand stage: retraining learns from what the model sees. No hand: no embedding."""

    def __init__(self, backbone: Backbone, identity: str, stage_factory: Callable[[], Any]):
        self.backbone = backbone
        self.size = max(backbone.input_shape[:2])
        # the store caches embeddings by this: crops of this hand stage, not whole frames
        self.sha256 = hashlib.sha256(f"{backbone.sha256}:hand-crop:{identity}".encode()).hexdigest()
        self._factory = stage_factory
        self._stage: Any = None

    def embed_frame(self, frame: np.ndarray) -> Optional[np.ndarray]:
        if self._stage is None:
            self._stage = self._factory()
        self._stage.reset()
        hand = self._stage(frame)
        return None if hand is None else self.backbone.embed_frame(hand.square_crop(frame, self.size))


class CropBackboneFeatures(BackboneFeatures):
    """BackboneFeatures on hand crops; the head records the backbone itself."""

    def __init__(self, embedder: CropEmbedder):
        super().__init__(embedder)
        self.backbone_sha256 = embedder.backbone.sha256

    def load(self, store: SampleStore) -> tuple[list[Sample], np.ndarray, int]:
        samples, X, _ = super().load(store)
        return samples, X, store.without_embedding(self.sha256)

    def head_info(self) -> dict:
        return {"backbone_sha256": self.backbone_sha256, "input": "hand-crop"}


def hand_model_id(palm_sha256: str, landmark_sha256: str, precision: str) -> str:
    """The hand stage's identity in the sample store: both model files and the precision."""
    return hashlib.sha256(f"{palm_sha256}:{landmark_sha256}:{precision}".encode()).hexdigest()


class LandmarkFeatures:
    """Landmark features (edge/hands/features.py) of the hand the hand stage finds."""

    def __init__(self, hand_model: str, stage_factory: Callable[[], Any],
                 groups: Optional[list[str]] = None):
        self.hand_model = hand_model
        self.sha256 = FEATURE_VERSION
        self._factory = stage_factory
        self._stage: Any = None
        self.groups = groups

    def find_hand(self, frame: np.ndarray) -> StoredHand:
        if self._stage is None:
            self._stage = self._factory()
        self._stage.reset()  # every stored photo is found from scratch, as a first frame is
        return stored_hand(self.hand_model, self._stage(frame))

    def embed_frame(self, frame: np.ndarray) -> Optional[np.ndarray]:
        h = self.find_hand(frame)
        return None if h.landmarks is None else landmark_features(h.landmarks, h.handedness)

    def prepare(self, store: SampleStore, deadline: Optional[float], progress: Optional[Progress]) -> int:
        """Hands found in samples that have none from this hand stage; features made from
        stored landmarks where missing or of another feature version."""
        found = store.ensure_hands(self, deadline, progress)
        todo = [(s.id, FEATURE_VERSION, landmark_features(h.landmarks, h.handedness))
                for s, h, f in store.hands(self.hand_model)
                if h.landmarks is not None and (f is None or f[0] != FEATURE_VERSION)]
        if todo:
            store.set_features(todo)
        return found

    def load(self, store: SampleStore) -> tuple[list[Sample], np.ndarray, int]:
        """(samples with a hand, their features, how many samples had no hand)."""
        samples, rows, skipped = [], [], 0
        for s, h, f in store.hands(self.hand_model):
            if h.landmarks is None:
                skipped += 1
                continue
            samples.append(s)
            rows.append(np.frombuffer(f[1], np.float32) if f is not None and f[0] == FEATURE_VERSION
                        else landmark_features(h.landmarks, h.handedness))
        return samples, (np.stack(rows) if rows else np.zeros((0, FEATURE_DIM), np.float32)), skipped

    def head_info(self) -> dict:
        return {"features": FEATURE_VERSION, "hand_model": self.hand_model}

    def mask(self) -> Optional[np.ndarray]:
        """The columns the package's head learns from (others are zeroed for the fit)."""
        return columns(self.groups) if self.groups else None


def sample_features(cfg: Config, package: ModelPackage, precision: str) -> SampleFeatures:
    """The features the package's head learns from, as the configuration runs it."""
    from edge.hands import load_hand_stage
    from edge.hands.stage import hand_models_dir
    from edge.runtime.loader import uses_hand_stage

    h = cfg.hands
    models = hand_models_dir(cfg)

    def stage() -> Any:  # one of its own: retraining runs beside the daemon's pipeline
        return load_hand_stage(models, h.palm, h.landmark, h.precision, h.threads or cfg.model.threads,
                               tracking=False, min_detection=h.min_detection, min_presence=h.min_presence,
                               mirror_retry=h.mirror_retry, retry_pad=h.retry_pad)

    if not is_landmark_package(package):
        # a model trained on hand crops learns from hand crops (whatever camera.roi says); one
        # trained on whole photos keeps learning from whole photos, like its base embeddings
        if uses_hand_stage(cfg, package) and package.meta.get("input", {}).get("crop") == "hand":
            backbone = Backbone(package, precision, cfg.model.threads, roi=None)
            return CropBackboneFeatures(CropEmbedder(backbone, hand_identity(cfg), stage))
        return BackboneFeatures(Backbone(package, precision, cfg.model.threads, roi=cfg.camera.roi))
    groups = (package.retrainable or {}).get("groups")
    groups = [g for g in groups if g in GROUPS] if isinstance(groups, list) else None
    return LandmarkFeatures(hand_identity(cfg), stage, groups)


def hand_identity(cfg: Config) -> str:
    """hand_model_id of the configured hand stage (the models' sha256 and precision)."""
    from edge.hands.stage import hand_models_dir

    h = cfg.hands
    models = hand_models_dir(cfg)
    shas = [resolve_package(spec, models).variants[h.precision]["sha256"] for spec in (h.palm, h.landmark)]
    return hand_model_id(shas[0], shas[1], h.precision)


def stored_hand(identity: str, hand: Any) -> StoredHand:
    """What the sample store keeps of a Hand (None: the hand stage found none)."""
    if hand is None:
        return StoredHand(identity)
    return StoredHand(identity, np.asarray(hand.landmarks, np.float32), hand.handedness, float(hand.score))
