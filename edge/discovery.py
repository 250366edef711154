"""Home Assistant MQTT discovery: retained configs that make the count a sensor by itself."""

from __future__ import annotations

import json

from edge import __version__


def discovery_messages(prefix: str, base: str, device_id: str, model: str = "") -> list[tuple[str, bytes]]:
    """(topic, payload) pairs; published retained at QoS 1 on every connect and whenever
    `<prefix>/status` says `online` (Home Assistant restarted)."""
    node = f"fingercount_{device_id}"
    device = {"identifiers": [node], "name": f"fingercount {device_id}", "model": "fingercount",
              "manufacturer": "fingercount", "sw_version": __version__}
    common = {"availability_topic": f"{base}/availability", "payload_available": "online",
              "payload_not_available": "offline", "device": device}
    entities = {
        "count": {"name": "Fingers", "state_topic": f"{base}/count",
                  # count is null when unsure; Jinja renders it as "None", which HA shows as unknown
                  "value_template": "{{ value_json.count }}",
                  "json_attributes_topic": f"{base}/count", "icon": "mdi:hand-back-right"},
        "confidence": {"name": "Confidence", "state_topic": f"{base}/count",
                       "value_template": "{{ (value_json.confidence * 100) | round(0) }}",
                       "unit_of_measurement": "%", "state_class": "measurement",
                       "icon": "mdi:gauge"},
        "fps": {"name": "Frames per second", "state_topic": f"{base}/stats",
                "value_template": "{{ value_json.fps }}", "unit_of_measurement": "fps",
                "state_class": "measurement", "entity_category": "diagnostic", "icon": "mdi:speedometer"},
        "model": {"name": "Model", "state_topic": f"{base}/stats",
                  "value_template": "{{ value_json.model }}", "entity_category": "diagnostic",
                  "icon": "mdi:brain"},
    }
    out = []
    for key, ent in entities.items():
        cfg = {**ent, **common, "unique_id": f"{node}_{key}", "object_id": f"{node}_{key}"}
        out.append((f"{prefix}/sensor/{node}/{key}/config", json.dumps(cfg).encode()))
    return out
