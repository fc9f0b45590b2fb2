"""A scripted Eclipse Paho client for Ingot's MQTT integration tests.

Usage: python3 paho_client.py '<json spec>'

The spec says how to connect (version 3 = MQTT 3.1.1 or 5, credentials, clean start,
session expiry, will), what to subscribe to, what to publish, how many messages to
collect, and how to leave ("clean" DISCONNECT or "abrupt": the process exits without
one). The outcome is printed as one JSON object on stdout:

  {"connack": <reason code>, "session_present": bool, "suback": [codes],
   "published": [{"rc": <reason code>, "reason": <reason string or null>}],
   "messages": [{"topic", "payload", "qos", "retain", "user", "sub_ids"}],
   "disconnect": {"rc": <reason code>, "reason": ...} | null}

Every wait is bounded by the spec's "timeout" (seconds).
"""

import json
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def code(rc):
    """A paho reason code (object or int) as an int."""
    if rc is None:
        return None
    return rc.value if hasattr(rc, "value") else int(rc)


def reason_string(properties):
    return getattr(properties, "ReasonString", None) if properties is not None else None


def main():
    spec = json.loads(sys.argv[1])
    v5 = spec.get("version", 5) == 5
    timeout = spec.get("timeout", 5.0)
    out = {
        "connack": None,
        "session_present": None,
        "suback": [],
        "published": [],
        "messages": [],
        "disconnect": None,
    }
    lock = threading.Lock()
    connected = threading.Event()
    subscribed = threading.Event()
    disconnected = threading.Event()
    acks = {}
    pending = []
    expected = spec.get("expect", 0)
    got_all = threading.Event()
    if expected == 0:
        got_all.set()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=spec.get("client_id", ""),
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else spec.get("clean", True),
    )
    if "username" in spec:
        client.username_pw_set(spec["username"], spec.get("password"))
    if "tls_ca" in spec:
        client.tls_set(ca_certs=spec["tls_ca"])
    will = spec.get("will")
    if will:
        props = None
        if v5 and will.get("delay"):
            props = Properties(PacketTypes.WILLMESSAGE)
            props.WillDelayInterval = will["delay"]
        client.will_set(
            will["topic"], will.get("payload", ""), will.get("qos", 0), will.get("retain", False), props
        )

    def on_connect(c, userdata, flags, rc, properties):
        with lock:
            out["connack"] = code(rc)
            out["session_present"] = bool(flags.session_present)
        connected.set()

    def on_subscribe(c, userdata, mid, rcs, properties):
        with lock:
            out["suback"] = [code(r) for r in rcs]
        subscribed.set()

    def on_publish(c, userdata, mid, rc, properties):
        with lock:
            acks[mid] = {"rc": code(rc), "reason": reason_string(properties)}

    def on_message(c, userdata, msg):
        props = msg.properties if v5 else None
        user = getattr(props, "UserProperty", []) if props is not None else []
        sub_ids = getattr(props, "SubscriptionIdentifier", []) if props is not None else []
        with lock:
            out["messages"].append(
                {
                    "topic": msg.topic,
                    "payload": msg.payload.decode("utf-8", "replace"),
                    "qos": msg.qos,
                    "retain": bool(msg.retain),
                    "user": [list(p) for p in user],
                    "sub_ids": list(sub_ids) if isinstance(sub_ids, list) else [sub_ids],
                }
            )
            if len(out["messages"]) >= expected:
                got_all.set()

    def on_disconnect(c, userdata, flags, rc, properties):
        with lock:
            out["disconnect"] = {"rc": code(rc), "reason": reason_string(properties)}
        disconnected.set()
        connected.set()
        subscribed.set()
        got_all.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    client.on_disconnect = on_disconnect

    connect_props = None
    if v5:
        connect_props = Properties(PacketTypes.CONNECT)
        connect_props.SessionExpiryInterval = spec.get("session_expiry", 0)
    client.connect(
        "127.0.0.1",
        spec["port"],
        keepalive=spec.get("keepalive", 30),
        clean_start=spec.get("clean", True) if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
        properties=connect_props,
    )
    client.loop_start()
    connected.wait(timeout)
    if out["connack"] not in (0,) or disconnected.is_set():
        finish(client, spec, out)
        return

    filters = spec.get("subscribe", [])
    if filters:
        sub_props = None
        if v5 and spec.get("sub_id"):
            sub_props = Properties(PacketTypes.SUBSCRIBE)
            sub_props.SubscriptionIdentifier = spec["sub_id"]
        client.subscribe([(f, q) for f, q in filters], properties=sub_props)
        subscribed.wait(timeout)
        if spec.get("ready_file"):
            with open(spec["ready_file"], "w") as f:
                f.write("ready")

    for p in spec.get("publish", []):
        props = None
        if v5 and (p.get("user") or p.get("content_type") or p.get("expiry")):
            props = Properties(PacketTypes.PUBLISH)
            if p.get("user"):
                props.UserProperty = [tuple(kv) for kv in p["user"]]
            if p.get("content_type"):
                props.ContentType = p["content_type"]
            if p.get("expiry"):
                props.MessageExpiryInterval = p["expiry"]
        info = client.publish(p["topic"], p.get("payload", ""), p.get("qos", 0), p.get("retain", False), props)
        pending.append((info.mid, p.get("qos", 0)))
    needs_ack = [mid for mid, qos in pending if qos > 0]
    if needs_ack:
        deadline = time.time() + timeout
        while time.time() < deadline and not disconnected.is_set():
            with lock:
                if all(mid in acks for mid in needs_ack):
                    break
            time.sleep(0.01)
    with lock:
        out["published"] = [
            acks.get(mid, {"rc": None, "reason": None}) if qos > 0 else {"rc": 0, "reason": None}
            for mid, qos in pending
        ]

    got_all.wait(spec.get("collect_timeout", timeout))
    time.sleep(spec.get("linger", 0))
    finish(client, spec, out)


def finish(client, spec, out):
    print(json.dumps(out), flush=True)
    if spec.get("leave", "clean") == "abrupt":
        # Leave without DISCONNECT: the broker must treat it as a lost connection.
        os._exit(0)
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    main()
