"""Home Assistant discovery configs: valid topics and entity ids for any device id, controls
that come and go with what the daemon offers, and templates rendered by Jinja2's sandbox (as
Home Assistant renders them) against the payloads the daemon really publishes."""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

from edge.discovery import ALL_ENTITIES, Controls, discovery_messages

# homeassistant/components/mqtt/discovery.py and homeassistant/core.py (valid_entity_id)
HA_TOPIC = re.compile(r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config")
HA_ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")

FULL = Controls(("0", "1", "2", "3", "4", "5", "none"), retrainable=True)


def configs(controls: Controls = FULL, device_id: str = "p1") -> dict[tuple[str, str], Any]:
    out = {}
    for topic, payload in discovery_messages("homeassistant", f"fingercount/{device_id}", device_id, controls):
        m = HA_TOPIC.fullmatch(topic.removeprefix("homeassistant/"))
        assert m, f"Home Assistant would ignore {topic}"
        out[(m["component"], m["object_id"])] = json.loads(payload) if payload else None
    return out


def render(template: str, payload: Any = None, **variables: Any) -> str:
    env = ImmutableSandboxedEnvironment()
    return env.from_string(template).render(value_json=payload, **variables)


def test_topics_and_entity_ids_are_valid_for_any_device_id() -> None:
    for device_id in ("p1", "Kitchen-Pi", "lab.bench", "pi_4b"):
        got = configs(device_id=device_id)
        assert set(got) == set(ALL_ENTITIES)
        for (component, key), cfg in got.items():
            assert HA_ENTITY_ID.match(cfg["default_entity_id"]), cfg["default_entity_id"]
            assert cfg["default_entity_id"].startswith(f"{component}.fingercount_")
            assert cfg["unique_id"] == f"fingercount_{device_id}_{key}"  # unchanged: HA keeps the entities
            assert cfg["availability_topic"] == f"fingercount/{device_id}/availability"
    assert configs(device_id="Kitchen-Pi")[("sensor", "count")]["default_entity_id"] == \
        "sensor.fingercount_kitchen_pi_count"


def test_controls_come_and_go_with_what_the_daemon_offers() -> None:
    counting_only = configs(Controls())
    assert counting_only[("sensor", "count")] is not None and counting_only[("button", "pause")] is not None
    for gone in [("button", "capture"), ("select", "capture_label"), ("sensor", "samples"),
                 ("button", "retrain"), ("button", "rollback")]:
        assert counting_only[gone] is None, gone  # an empty retained config removes the entity
    fixed = configs(Controls(("0", "1"), retrainable=False))  # a model that cannot learn
    assert fixed[("select", "capture_label")]["options"] == ["0", "1"]
    assert fixed[("button", "retrain")] is None and fixed[("button", "rollback")] is None
    full = configs()
    assert full[("button", "retrain")]["command_topic"] == "fingercount/p1/cmd/retrain"
    assert json.loads(full[("button", "retrain")]["payload_press"]) == {"wait": False}
    for key in ("capture", "pause", "resume", "rollback"):
        b = full[("button", key)]
        assert b["command_topic"] == f"fingercount/p1/cmd/{key}" and json.loads(b["payload_press"]) == {}


def test_templates_render_the_daemons_payloads() -> None:
    c = configs()
    count = c[("sensor", "count")]["value_template"]
    assert render(count, {"count": 3, "label": "3", "confidence": 0.97}) == "3"
    assert render(count, {"count": None, "label": None, "confidence": 0.0}) == "None"  # HA: unknown
    assert render(c[("sensor", "confidence")]["value_template"], {"confidence": 0.9731}) == "97.0"
    stats = {"fps": 29.9, "model": "fingers-mobilenet@2.3.0/int8", "paused": False,
             "samples": {"3": 4, "none": 2}, "capture_label": "none"}
    samples = c[("sensor", "samples")]
    assert render(samples["value_template"], stats) == "6"
    assert json.loads(render(samples["json_attributes_template"], stats)) == {"3": 4, "none": 2}
    assert render(samples["value_template"], {**stats, "samples": None}) == "None"  # store not open
    assert json.loads(render(samples["json_attributes_template"], {**stats, "samples": None})) == {}
    assert render(samples["value_template"], {**stats, "samples": {}}) == "0"
    paused = c[("binary_sensor", "paused")]["value_template"]
    assert render(paused, stats) == "OFF" and render(paused, {**stats, "paused": True}) == "ON"
    select = c[("select", "capture_label")]
    assert render(select["value_template"], stats) == "none"
    assert json.loads(render(select["command_template"], value="none")) == {"label": "none"}
