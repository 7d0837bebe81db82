"""Home Assistant discovery with several streams: every announced sensor's template, rendered with Jinja as
HA renders it, finds its number in the retained status."""
import json

import jinja2

from edge_app.events.device import compact_status, discovery_messages


def analytics(line_in: int, zone_total: int) -> dict:
    return {"lines": {"gate": {"in": {}, "out": {}, "total_in": line_in, "total_out": 1}},
            "zones": {"hall": {"occupancy": {}, "entries": {}, "exits": {}, "total": zone_total}}}


def test_each_streams_sensors_read_their_own_counts():
    status = {"fps": 20.0, "health": {"state": "ok"}, "source": {"uri": "synthetic://", "state": "playing"},
              "rolling": {}, "streams": {"a": {"fps": 10.0, "source": "playing", "frames": 5, "analytics": analytics(3, 2)},
                                         "b": {"fps": 10.0, "source": "playing", "frames": 7, "analytics": analytics(8, 4)}}}
    retained = compact_status("dev1", status, status["streams"]["a"]["analytics"])
    payload = json.loads(json.dumps(retained))  # what goes over the wire
    messages = dict(discovery_messages("edge", "dev1", ["gate"], ["hall"], {"b": (["gate"], ["hall"])}))
    env = jinja2.Environment()
    values = {}
    for topic, body in messages.items():
        config = json.loads(body)
        if "value_template" in config:
            values[config["unique_id"]] = env.from_string(config["value_template"]).render(value_json=payload)
    assert values["dev1_gate_in"] == "3" and values["dev1_hall_occupancy"] == "2"      # the first stream
    assert values["dev1_b_gate_in"] == "8" and values["dev1_b_hall_occupancy"] == "4"  # the second one
    assert values["dev1_b_gate_out"] == "1" and values["dev1_fps"] == "20.0"
    assert len({json.loads(b)["unique_id"] for b in messages.values()}) == len(messages)
