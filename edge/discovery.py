"""Home Assistant MQTT discovery: retained configs that make the count a sensor, and the
daemon's commands buttons and a select, without configuration in Home Assistant."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge import __version__


@dataclass(frozen=True)
class Controls:
    """What the running daemon offers beyond counting."""

    capture_labels: Sequence[str] = ()  # empty: no sample store, so no capture controls
    retrainable: bool = False           # retrain and rollback buttons


def entity_slug(text: str) -> str:
    """Lowercase letters, digits and single underscores, as a Home Assistant entity id
    must be (`fingercount_Kitchen-Pi_count` -> `fingercount_kitchen_pi_count`)."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _entities(base: str, controls: Controls) -> dict[tuple[str, str], dict[str, Any]]:
    """(component, key) -> entity config, without the parts every entity shares."""
    stats = f"{base}/stats"
    out: dict[tuple[str, str], dict[str, Any]] = {
        ("sensor", "count"): {
            "name": "Fingers", "state_topic": f"{base}/count",
            # count is null when unsure; Jinja renders it "None", which HA shows as unknown
            "value_template": "{{ value_json.count }}",
            "json_attributes_topic": f"{base}/count", "icon": "mdi:hand-back-right"},
        ("sensor", "confidence"): {
            "name": "Confidence", "state_topic": f"{base}/count",
            "value_template": "{{ (value_json.confidence * 100) | round(0) }}",
            "unit_of_measurement": "%", "state_class": "measurement", "icon": "mdi:gauge"},
        ("sensor", "fps"): {
            "name": "Frames per second", "state_topic": stats, "value_template": "{{ value_json.fps }}",
            "unit_of_measurement": "fps", "state_class": "measurement",
            "entity_category": "diagnostic", "icon": "mdi:speedometer"},
        ("sensor", "model"): {
            "name": "Model", "state_topic": stats, "value_template": "{{ value_json.model }}",
            "entity_category": "diagnostic", "icon": "mdi:brain"},
        ("binary_sensor", "paused"): {
            "name": "Paused", "state_topic": stats,
            "value_template": "{{ 'ON' if value_json.paused else 'OFF' }}", "icon": "mdi:pause-circle"},
        ("button", "pause"): {"name": "Pause", "command_topic": f"{base}/cmd/pause",
                              "payload_press": "{}", "icon": "mdi:pause"},
        ("button", "resume"): {"name": "Resume", "command_topic": f"{base}/cmd/resume",
                               "payload_press": "{}", "icon": "mdi:play"},
    }
    if controls.capture_labels:
        out[("sensor", "samples")] = {
            "name": "Samples", "state_topic": stats,
            # samples is null while the store cannot be opened (shown as unknown)
            "value_template": "{{ value_json.samples.values() | sum if value_json.samples is mapping else None }}",
            "json_attributes_topic": stats,
            "json_attributes_template": "{{ (value_json.samples or {}) | tojson }}",
            "entity_category": "diagnostic", "icon": "mdi:image-multiple"}
        out[("select", "capture_label")] = {
            "name": "Capture label", "options": list(controls.capture_labels),
            "command_topic": f"{base}/cmd/set_label",
            "command_template": '{"label": "{{ value }}"}',
            "state_topic": stats, "value_template": "{{ value_json.capture_label }}",
            "entity_category": "config", "icon": "mdi:label"}
        out[("button", "capture")] = {"name": "Capture sample", "command_topic": f"{base}/cmd/capture",
                                      "payload_press": "{}", "icon": "mdi:camera"}
    if controls.retrainable:
        out[("button", "retrain")] = {"name": "Retrain", "command_topic": f"{base}/cmd/retrain",
                                      "payload_press": '{"wait": false}', "icon": "mdi:school"}
        out[("button", "rollback")] = {"name": "Roll back head", "command_topic": f"{base}/cmd/rollback",
                                       "payload_press": "{}", "icon": "mdi:undo"}
    return out


# Every entity any daemon may offer: those the current one does not are removed (an empty
# retained config), e.g. the retrain button after a switch to a model that cannot learn.
ALL_ENTITIES = tuple(_entities("", Controls(("0",), True)))


def discovery_messages(prefix: str, base: str, device_id: str,
                       controls: Controls = Controls()) -> list[tuple[str, bytes]]:
    """(topic, payload) pairs; published retained at QoS 1 on every connect, whenever
    `<prefix>/status` says `online` (Home Assistant restarted) and when the controls change."""
    node = f"fingercount_{device_id}"  # unique ids as before: HA keeps the user's entities
    topic_node = re.sub(r"[^a-zA-Z0-9_-]", "_", node)  # HA ignores a discovery topic with others
    device = {"identifiers": [node], "name": f"fingercount {device_id}", "model": "fingercount",
              "manufacturer": "fingercount", "sw_version": __version__}
    common = {"availability_topic": f"{base}/availability", "payload_available": "online",
              "payload_not_available": "offline", "device": device}
    entities = _entities(base, controls)
    out = []
    for component, key in ALL_ENTITIES:
        topic = f"{prefix}/{component}/{topic_node}/{key}/config"
        ent = entities.get((component, key))
        if ent is None:
            out.append((topic, b""))
            continue
        # default_entity_id since Home Assistant 2025.10 (object_id is ignored from 2026.4);
        # object_id for older versions
        object_id = entity_slug(f"{node}_{key}")
        cfg = {**ent, **common, "unique_id": f"{node}_{key}", "object_id": object_id,
               "default_entity_id": f"{component}.{object_id}"}
        out.append((topic, json.dumps(cfg).encode()))
    return out
