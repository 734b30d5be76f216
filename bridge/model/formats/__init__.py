"""Payload formats (SPEC section 4's table): each payload becomes TagoIO point dicts,
which then go through ``validate_points`` like any POST body, so one set of rules decides
what is stored whatever the device speaks.

The selector picks a format from the MQTT topic (the part after ``devices/{id}/``) or
the HTTP Content-Type; the format converts bytes; ``Converted.validate`` runs the usual
validation and relabels its errors to the places in the original payload::

    fmt = format_for_topic("senml/cbor")          # None: not a data topic
    converted = fmt.convert(payload, received_ns=now, max_points=limit)
    points = converted.validate(lambda body: validate_points(body, ...))

``convert`` raises only ValidationError (a payload that is not of the format at all) or
PayloadTooLarge (more points than ``max_points``), whatever the bytes; ``validate`` then
raises one ValidationError listing every fault, each at its place in the original
payload (``[3] v``, a key path, the topic), all or nothing like a POST.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.model.formats.converted import Converted, Origin, load_json
from bridge.model.formats.kv import convert_kv
from bridge.model.formats.raw import convert_raw
from bridge.model.formats.senml import convert_senml_json
from bridge.model.formats.senml_cbor import convert_senml_cbor

__all__ = [
    "FORMAT_NAMES", "Converted", "Origin", "PayloadFormat", "format_for_content_type",
    "format_for_topic",
]

# A closed set, so a format's name can label a metric.
FORMAT_NAMES = ("tagoio", "raw", "kv", "senml+json", "senml+cbor")


@dataclass(frozen=True, slots=True)
class PayloadFormat:
    """One payload format; ``variable`` is the topic's variable, for raw values only."""

    name: str
    variable: str | None = None

    def convert(self, payload: bytes, *, received_ns: int, max_points: int) -> Converted:
        """``payload`` as TagoIO point dicts, with where each came from.

        ``received_ns`` resolves SenML times relative to "now"; ``max_points`` refuses
        oversized payloads before they are expanded into points."""
        name = self.name
        if name == "raw":
            return convert_raw(payload, self.variable or "")
        if name == "kv":
            return convert_kv(payload, max_points=max_points)
        if name == "senml+json":
            return convert_senml_json(payload, received_ns=received_ns, max_points=max_points)
        if name == "senml+cbor":
            return convert_senml_cbor(payload, received_ns=received_ns, max_points=max_points)
        # TagoIO JSON is already the target shape: validate_points names its own errors.
        return Converted(load_json(payload))


TAGOIO = PayloadFormat("tagoio")
KV = PayloadFormat("kv")
SENML_JSON = PayloadFormat("senml+json")
SENML_CBOR = PayloadFormat("senml+cbor")
_BY_SUFFIX = {"data": TAGOIO, "kv": KV, "senml": SENML_JSON, "senml/cbor": SENML_CBOR}
_BY_MEDIA_TYPE = {"application/senml+json": SENML_JSON, "application/senml+cbor": SENML_CBOR}


def format_for_topic(suffix: str) -> PayloadFormat | None:
    """The format of a topic ``devices/{id}/{suffix}``; None when it is no data topic.

    ``data/{variable}`` takes everything after ``data/`` as the variable, slashes
    included (``data/room/1`` is variable ``room/1``): a variable may hold a slash, and
    the topic is the only place a raw value can name it."""
    fmt = _BY_SUFFIX.get(suffix)
    if fmt is None and suffix.startswith("data/"):
        fmt = PayloadFormat("raw", suffix[len("data/"):])
    return fmt


def format_for_content_type(content_type: str | None) -> PayloadFormat:
    """The format of an HTTP body. Only the SenML media types switch format: any other
    (``application/json``, none, curl's default form type) is TagoIO JSON, as it has
    always been, so existing clients keep working whatever header they send."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return _BY_MEDIA_TYPE.get(media_type, TAGOIO)
