"""ChirpStack v4's HTTP integration, JSON marshaler: ``POST ...?event=up`` and friends.

The body is the event's Protobuf message in Protobuf's JSON mapping (lowerCamelCase keys;
fields at their default value, 0 or false, are left out): ``UplinkEvent`` for ``up``,
``StatusEvent`` for ``status`` (api/proto/integration/integration.proto). The device is
``deviceInfo.devEui``; the decoded payload, when the device profile has a codec, is
``object``; the frame payload is ``data`` (base64).

``status`` (a DevStatusAns: battery level and link margin) is stored too: it is the only
place a LoRaWAN device's battery level reaches an application when its codec does not
decode one. Every other event (join, ack, txack, log, location, integration) is
acknowledged and not stored: none of them is a reading of the device.
"""

from __future__ import annotations

from typing import Any

from bridge.model.formats.lorawan import Fields, Gateway, Uplink

STORED_EVENTS = ("up", "status")
KNOWN_EVENTS = ("up", "status", "join", "ack", "txack", "log", "location", "integration")
_TITLES = {"up": "Invalid ChirpStack uplink", "status": "Invalid ChirpStack status event"}


def parse_chirpstack(event: str, body: Any) -> Uplink:
    """The event's uplink; ``event`` must be one of STORED_EVENTS. Raises ValidationError
    naming the JSON path of the first structural fault."""
    title = _TITLES[event]
    read = Fields(title)
    body = read.obj(body, "body", required=True)
    assert body is not None
    info = read.obj(body.get("deviceInfo"), "deviceInfo", required=True) or {}
    uplink = Uplink("chirpstack", title, read.eui(info.get("devEui"), "deviceInfo.devEui"),
                    time=read.time(body.get("time"), "time"))
    if event == "status":
        return _status(read, body, uplink)
    uplink.fcnt = read.integer(body.get("fCnt"), "fCnt") or 0
    uplink.fport = read.integer(body.get("fPort"), "fPort", limit=255) or 0
    uplink.decoded = read.obj(body.get("object"), "object")
    uplink.decoded_at = ("object",)
    uplink.frame, uplink.frame_at = read.base64(body.get("data"), "data"), "data"
    tx = read.obj(body.get("txInfo"), "txInfo") or {}
    uplink.frequency = read.integer(tx.get("frequency"), "txInfo.frequency", default=None)
    modulation = read.obj(tx.get("modulation"), "txInfo.modulation") or {}
    lora = read.obj(modulation.get("lora"), "txInfo.modulation.lora")
    if lora is not None:
        uplink.spreading_factor = read.integer(
            lora.get("spreadingFactor"), "txInfo.modulation.lora.spreadingFactor", limit=12)
    for path, rx in read.items(body.get("rxInfo"), "rxInfo"):
        snr = read.number(rx.get("snr"), f"{path}.snr")
        uplink.gateways.append(Gateway(
            read.gateway_id(rx.get("gatewayId"), f"{path}.gatewayId"),
            read.number(rx.get("rssi"), f"{path}.rssi") or 0,
            # Left out when 0, but only LoRa has an SNR at all.
            snr if snr is not None or lora is None else 0))
    return uplink


def _status(read: Fields, body: dict[str, Any], uplink: Uplink) -> Uplink:
    uplink.radio = False
    margin = body.get("margin", 0)
    if type(margin) is not int:
        raise read.fail("margin", "must be an integer")
    external = body.get("externalPowerSource", False)
    unavailable = body.get("batteryLevelUnavailable", False)
    for name, flag in (("externalPowerSource", external),
                       ("batteryLevelUnavailable", unavailable)):
        if type(flag) is not bool:
            raise read.fail(name, "must be true or false")
    uplink.extra.append({"variable": "margin", "value": margin, "unit": "dB"})
    uplink.extra.append({"variable": "external_power_source", "value": external})
    if not external and not unavailable:
        level = read.number(body.get("batteryLevel"), "batteryLevel") or 0
        uplink.extra.append({"variable": "battery_level", "value": level, "unit": "%"})
    return uplink
