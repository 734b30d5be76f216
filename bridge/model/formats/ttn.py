"""The Things Stack v3 (The Things Network) webhooks: ``ApplicationUp`` messages.

One webhook URL may receive every message type the webhook has enabled; the type is the
key beside ``end_device_ids``. ``uplink_message`` is stored: the device is
``end_device_ids.dev_eui``, the decoded payload (from the payload formatter)
``uplink_message.decoded_payload``, the frame payload ``uplink_message.frm_payload``
(base64), the receive time ``uplink_message.received_at`` (the Network Server's). Empty
fields (0, "", false) are left out by The Things Stack. Other messages (join accept,
downlink events, location solved, service data) are acknowledged and not stored.
"""

from __future__ import annotations

from typing import Any

from bridge.model.formats.lorawan import Fields, Gateway, Uplink

TITLE = "Invalid The Things Stack uplink"
STORED_MESSAGE = "uplink_message"
KNOWN_MESSAGES = (
    "uplink_message", "uplink_normalized", "join_accept", "downlink_ack", "downlink_nack",
    "downlink_sent", "downlink_failed", "downlink_queued", "downlink_queue_invalidated",
    "location_solved", "service_data",
)


def message_type(body: Any) -> str | None:
    """The message type of a webhook body (one of KNOWN_MESSAGES), or None."""
    if type(body) is dict:
        for name in KNOWN_MESSAGES:
            if name in body:
                return name
    return None


def parse_ttn(body: Any) -> Uplink:
    """The uplink of an ``uplink_message``; ValidationError names the first fault."""
    read = Fields(TITLE)
    body = read.obj(body, "body", required=True)
    assert body is not None
    ids = read.obj(body.get("end_device_ids"), "end_device_ids", required=True) or {}
    message = read.obj(body.get(STORED_MESSAGE), STORED_MESSAGE, required=True) or {}
    at = STORED_MESSAGE
    received = message.get("received_at")
    uplink = Uplink("ttn", TITLE, read.eui(ids.get("dev_eui"), "end_device_ids.dev_eui"),
                    time=read.time(received, f"{at}.received_at") if received is not None
                    else read.time(body.get("received_at"), "received_at"))
    uplink.fcnt = read.integer(message.get("f_cnt"), f"{at}.f_cnt") or 0
    uplink.fport = read.integer(message.get("f_port"), f"{at}.f_port", limit=255) or 0
    uplink.decoded = read.obj(message.get("decoded_payload"), f"{at}.decoded_payload")
    uplink.decoded_at = (at, "decoded_payload")
    uplink.frame = read.base64(message.get("frm_payload"), f"{at}.frm_payload")
    uplink.frame_at = f"{at}.frm_payload"
    settings = read.obj(message.get("settings"), f"{at}.settings") or {}
    uplink.frequency = read.integer(settings.get("frequency"), f"{at}.settings.frequency",
                                    default=None)
    rate = read.obj(settings.get("data_rate"), f"{at}.settings.data_rate") or {}
    lora = read.obj(rate.get("lora"), f"{at}.settings.data_rate.lora")
    if lora is not None:
        uplink.spreading_factor = read.integer(
            lora.get("spreading_factor"), f"{at}.settings.data_rate.lora.spreading_factor",
            limit=12)
    for path, rx in read.items(message.get("rx_metadata"), f"{at}.rx_metadata"):
        gateway_ids = read.obj(rx.get("gateway_ids"), f"{path}.gateway_ids") or {}
        snr = read.number(rx.get("snr"), f"{path}.snr")
        uplink.gateways.append(Gateway(
            read.gateway_id(gateway_ids.get("gateway_id"), f"{path}.gateway_ids.gateway_id"),
            # Packet Broker's entries may carry only the channel RSSI.
            read.number(rx.get("rssi", rx.get("channel_rssi")), f"{path}.rssi") or 0,
            snr if snr is not None or lora is None else 0))
    return uplink
