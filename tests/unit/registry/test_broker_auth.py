"""The broker hooks' rules (pure), read as a hostile device would probe them: other ids,
wildcards, $share, long names, the bridge's topics and session."""

from __future__ import annotations

import pytest

from bridge.registry import broker_auth as rules
from bridge.registry.broker_auth import DEVICE_ROLE, Identity
from bridge.registry.dynsec import ADMIN_ROLE, API_ROLE, BRIDGE_ROLE

ME = "a" * 24
OTHER = "b" * 24
DEVICE = Identity(ME, DEVICE_ROLE)
BRIDGE = Identity("devicedata-bridge", BRIDGE_ROLE)


@pytest.mark.parametrize("topic", [
    f"devices/{ME}/data", f"devices/{ME}/data/temperature", f"devices/{ME}/kv",
    f"devices/{ME}/senml", f"devices/{ME}/senml/cbor", f"devices/{ME}/data/" + "v" * 100])
def test_a_device_publishes_to_its_own_topics(topic: str) -> None:
    assert rules.may_publish(DEVICE, topic)


@pytest.mark.parametrize("topic", [
    f"devices/{OTHER}/data", f"devices/{ME}/errors", f"devices/{ME}/data/a/b",
    f"devices/{ME}/data/", f"devices/{ME}/data/+", f"devices/{ME}/#", f"devices/{ME}/other",
    f"devices/{ME}/data/" + "v" * 101, f"devices/{ME}/data\0", f"devices/{ME}", "devices",
    "#", "$SYS/broker/uptime", "$CONTROL/dynamic-security/v1", f"devices/{ME}x/data",
    f"devices/{ME[:-1]}/data", f"x/devices/{ME}/data", "", "d" * 70000])
def test_a_device_publishes_nowhere_else(topic: str) -> None:
    assert not rules.may_publish(DEVICE, topic)


def test_a_device_subscribes_only_to_its_own_errors_topic_literally() -> None:
    assert rules.may_subscribe(DEVICE, f"devices/{ME}/errors")
    for topic_filter in [
            f"devices/{OTHER}/errors", f"devices/{ME}/+", f"devices/{ME}/#", "devices/+/errors",
            "devices/+/data", "#", "+/+/+", f"$share/g/devices/{ME}/errors",
            "$share/devicedata/devices/+/data", "$share/x/#", f"$queue/devices/{ME}/errors",
            "$SYS/#", "$CONTROL/dynamic-security/#", f"devices/{ME}/data", ""]:
        assert not rules.may_subscribe(DEVICE, topic_filter), topic_filter


def test_a_device_receives_only_its_own_errors() -> None:
    assert rules.may_receive(DEVICE, f"devices/{ME}/errors")
    assert not rules.may_receive(DEVICE, f"devices/{OTHER}/errors")
    assert not rules.may_receive(DEVICE, f"devices/{OTHER}/data")


def test_a_device_keeps_to_its_own_client_id() -> None:
    assert rules.client_id_allowed(DEVICE, ME)
    assert rules.client_id_allowed(DEVICE, "")  # the broker assigns one
    assert rules.client_id_allowed(DEVICE, None)  # the broker does not say
    for stolen in ["devicedata-bridge", OTHER, ME + "x", ME.upper()]:
        assert not rules.client_id_allowed(DEVICE, stolen)
    assert rules.client_id_allowed(BRIDGE, "devicedata-bridge-1")


def test_the_bridge() -> None:
    for topic_filter in ["devices/+/data", "$share/devicedata/devices/+/data",
                         "$share/g2/devices/+/senml/cbor", "devices/#"]:
        assert rules.may_subscribe(BRIDGE, topic_filter), topic_filter
    for topic_filter in ["#", "$share/devicedata/#", "$share//devices/+/data",
                         "$share/+/devices/+/data", "$SYS/#", "$CONTROL/dynamic-security/#"]:
        assert not rules.may_subscribe(BRIDGE, topic_filter), topic_filter
    assert rules.may_publish(BRIDGE, f"devices/{ME}/errors")
    assert not rules.may_publish(BRIDGE, f"devices/{ME}/data")
    assert not rules.may_publish(BRIDGE, "devices/+/errors")
    assert rules.may_receive(BRIDGE, f"devices/{ME}/data")


def test_the_api_user_and_the_admin() -> None:
    api, admin = Identity("devicedata-api", API_ROLE), Identity("devicedata-admin", ADMIN_ROLE)
    assert not rules.may_publish(api, f"devices/{ME}/data")
    assert not rules.may_subscribe(api, "devices/#")
    assert rules.may_publish(admin, "$CONTROL/dynamic-security/v1")
    assert rules.may_subscribe(admin, "$CONTROL/dynamic-security/#")
    assert not rules.may_subscribe(admin, "devices/#")


def test_rabbitmq_routing_keys_back_to_mqtt_topics() -> None:
    assert rules.mqtt_topic(f"devices.{ME}.data") == f"devices/{ME}/data"
    assert rules.mqtt_topic("devices.*.data") == "devices/+/data"
    assert rules.mqtt_topic("devices.x.data.temp/c") == "devices/x/data/temp.c"
    assert rules.mqtt_topic("$share.g.devices.*.data") == "$share/g/devices/+/data"


def test_rabbitmq_resources() -> None:
    mine = f"mqtt-subscription-{ME}qos1"
    assert rules.rabbitmq_resource(DEVICE, ME, "queue", mine, "configure")
    assert rules.rabbitmq_resource(DEVICE, ME, "exchange", "amq.topic", "write")
    assert not rules.rabbitmq_resource(DEVICE, ME, "exchange", "amq.topic", "configure")
    assert not rules.rabbitmq_resource(DEVICE, ME, "exchange", "amq.direct", "write")
    # Another session's queue: the bridge's, or another device's.
    assert not rules.rabbitmq_resource(DEVICE, ME, "queue",
                                       "mqtt-subscription-devicedata-bridgeqos1", "read")
    assert not rules.rabbitmq_resource(DEVICE, "devicedata-bridge", "queue",
                                       "mqtt-subscription-devicedata-bridgeqos1", "read")
    assert not rules.rabbitmq_resource(DEVICE, ME, "queue",
                                       f"mqtt-subscription-{OTHER}qos1", "read")
    assert not rules.rabbitmq_resource(DEVICE, "", "queue", "mqtt-subscription-qos1", "read")
    assert rules.rabbitmq_resource(BRIDGE, "bridge-1", "queue",
                                   "mqtt-subscription-bridge-1qos1", "read")
    assert rules.rabbitmq_topic(DEVICE, "amq.topic", "write", f"devices.{ME}.data")
    assert not rules.rabbitmq_topic(DEVICE, "amq.topic", "write", f"devices.{OTHER}.data")
    assert rules.rabbitmq_topic(DEVICE, "amq.topic", "read", f"devices.{ME}.errors")
    assert not rules.rabbitmq_topic(DEVICE, "amq.topic", "read", "devices.*.data")
    assert not rules.rabbitmq_topic(DEVICE, "other", "write", f"devices.{ME}.data")
    assert rules.rabbitmq_topic(BRIDGE, "amq.topic", "read", "devices.*.data")
