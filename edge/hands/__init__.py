"""The hand stage: palm detection, hand landmarks and tracking, in numpy around TFLite."""

from edge.hands.hand import NO_HAND_PAYLOAD, Hand, no_hand_payload
from edge.hands.stage import FrameError, HandStage, hand_stage_from_config, load_hand_stage

__all__ = ["NO_HAND_PAYLOAD", "FrameError", "Hand", "HandStage", "hand_stage_from_config", "load_hand_stage", "no_hand_payload"]
