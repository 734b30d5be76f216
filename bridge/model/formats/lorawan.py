"""LoRaWAN uplinks, whatever network server forwarded them, as TagoIO points.

``chirpstack.py`` and ``ttn.py`` read their network server's JSON into an ``Uplink``;
``Uplink.convert`` makes the points (docs/formats.md, "LoRaWAN"), all in one group and at
the network server's receive time:

- every field of the decoded payload, by the key-value rules (``kv.flatten``: nested
  objects joined with ``_``); a decoded location (``latitude``/``longitude`` or
  ``lat``/``lng``/``lon``, at the top or in one object at the top) is not stored as
  variables but becomes the location of every point of the uplink;
- without a decoded payload, ``payload``: the frame payload as hex;
- radio variables of the best gateway (highest SNR, then RSSI): ``rssi`` (dBm), ``snr``
  (dB), then ``fcnt``, ``fport``, ``frequency`` (Hz), ``spreading_factor``,
  ``gateway_count``, each with the best gateway's id as ``metadata.gateway_id``. A
  decoded field of the same name wins over a radio variable.

The group is derived from the uplink itself (network, EUI, time, frame counter), so a
redelivered uplink writes the same points again instead of adding new ones. The readers
raise ``ValidationError`` naming the JSON path of the first structural fault; faults in
the decoded payload are named by ``Converted.validate`` at their key path, all of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bridge.errors import FieldError, PayloadTooLarge, ValidationError
from bridge.model.fields import check_location
from bridge.model.formats.converted import Converted, Origin, key_path, kind_of
from bridge.model.formats.kv import Keys, flatten
from bridge.model.timeparse import parse_iso

NETWORKS = ("chirpstack", "ttn")  # a closed set: metric labels
_EUI = re.compile(r"[0-9A-Fa-f]{16}", re.ASCII)
_LAT = ("latitude", "lat")
_LNG = {"latitude": ("longitude",), "lat": ("lng", "lon")}
MAX_GATEWAY_ID = 100


@dataclass(slots=True)
class Gateway:
    """One receiving gateway (or antenna): what the radio variables are taken from."""

    id: str | None
    rssi: float | None
    snr: float | None


@dataclass(slots=True)
class Uplink:
    """One uplink as a network server reported it, checked for shape but not converted.

    ``decoded_at`` is the JSON path of the decoded payload (its keys' errors are named
    under it); ``extra`` holds further points an event carries (ChirpStack's status)."""

    network: str  # one of NETWORKS
    title: str  # the message of a ValidationError about this uplink
    eui: str
    time: str | None = None  # the network server's receive time, ISO 8601
    decoded: dict[str, Any] | None = None
    decoded_at: Keys = ()
    frame: bytes | None = None
    frame_at: str = ""
    fcnt: int = 0
    fport: int = 0
    frequency: int | None = None
    spreading_factor: int | None = None
    gateways: list[Gateway] = field(default_factory=list)
    radio: bool = True
    extra: list[dict[str, Any]] = field(default_factory=list)

    def convert(self, *, received_ns: int, max_points: int) -> Converted:
        """The uplink's points, ready for ``validate_points``; PayloadTooLarge past
        ``max_points``, ValidationError for a decoded location out of range."""
        points: list[dict[str, Any]] = []
        origins: list[Origin] = []
        errors: list[FieldError] = []
        location = None
        if self.decoded is not None:
            decoded, location = self._split_location(self.decoded)
            flatten(decoded, self.decoded_at, None, points, origins, errors)
            if len(points) > max_points:
                raise PayloadTooLarge(f"Too many data points: more than {max_points} keys "
                                      f"in the decoded payload, at most {max_points}")
        elif self.frame:
            points.append({"variable": "payload", "value": self.frame.hex()})
            origins.append(Origin(None, {}, self.frame_at))
        taken = {p["variable"] for p in points}
        for point in self.extra + self._radio():
            if point["variable"] not in taken:
                points.append(point)
                origins.append(Origin(None, {}, "uplink"))
        time_ns = received_ns if self.time is None else parse_iso(self.time)
        time = self.time or _iso_ns(time_ns)
        key = f"{self.network}:{self.title}:{self.eui}:{time_ns}:{self.fcnt}:{self.fport}"
        group = hashlib.sha256(key.encode()).hexdigest()[:24]
        for point in points:
            point["time"], point["group"] = time, group
            if location is not None:
                point["location"] = location
        return Converted(points, origins, self.title, errors)

    def _split_location(self, decoded: dict[str, Any]
                        ) -> tuple[dict[str, Any], dict[str, float] | None]:
        """The decoded payload without its location keys, and the location they gave."""
        found = _location_keys(decoded)
        if found is not None:
            lat, lng = found
            return _without(decoded, lat, lng), self._location(decoded, lat, lng, ())
        for key, value in decoded.items():
            if type(value) is dict and (found := _location_keys(value)) is not None:
                lat, lng = found
                rest = dict(decoded)
                rest[key] = _without(value, lat, lng)
                return rest, self._location(value, lat, lng, (key,))
        return decoded, None

    def _location(self, obj: dict[str, Any], lat: str, lng: str,
                  at: Keys) -> dict[str, float]:
        location = {"lat": obj[lat], "lng": obj[lng]}
        try:
            check_location(location)
        except ValueError as exc:
            where = key_path((*self.decoded_at, *at, lat)) + f" / {key_path((lng,))}"
            raise ValidationError(self.title, [FieldError(where, str(exc))]) from None
        return location

    def _radio(self) -> list[dict[str, Any]]:
        if not self.radio:
            return []
        best = None
        for gateway in self.gateways:
            if best is None or _rank(gateway) > _rank(best):
                best = gateway
        points: list[dict[str, Any]] = []
        if best is not None:
            if best.rssi is not None:
                points.append({"variable": "rssi", "value": best.rssi, "unit": "dBm"})
            if best.snr is not None:
                points.append({"variable": "snr", "value": best.snr, "unit": "dB"})
        points += [{"variable": "fcnt", "value": self.fcnt},
                   {"variable": "fport", "value": self.fport}]
        if self.frequency is not None:
            points.append({"variable": "frequency", "value": self.frequency, "unit": "Hz"})
        if self.spreading_factor is not None:
            points.append({"variable": "spreading_factor", "value": self.spreading_factor})
        ids = {g.id if g.id is not None else i for i, g in enumerate(self.gateways)}
        points.append({"variable": "gateway_count", "value": len(ids)})
        if best is not None and best.id is not None:
            for point in points:
                point["metadata"] = {"gateway_id": best.id}
        return points


def _rank(gateway: Gateway) -> tuple[float, float]:
    low = float("-inf")
    return (low if gateway.snr is None else gateway.snr,
            low if gateway.rssi is None else gateway.rssi)


def _location_keys(obj: dict[str, Any]) -> tuple[str, str] | None:
    """The keys of a latitude/longitude pair of numbers in ``obj`` (any letter case)."""
    lowered: dict[str, str] = {}
    for key in obj:
        lowered.setdefault(key.lower(), key)
    for lat in _LAT:
        for lng in _LNG[lat]:
            if lat in lowered and lng in lowered:
                a, b = obj[lowered[lat]], obj[lowered[lng]]
                if type(a) in (int, float) and type(b) in (int, float):
                    return lowered[lat], lowered[lng]
    return None


def _without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def _iso_ns(ns: int) -> str:
    seconds, rest = divmod(ns, 10**9)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


# Readers: each takes a JSON value and its path, and raises ValidationError naming the path.

class Fields:
    """Typed reads of a network server's JSON, every fault named by its JSON path."""

    def __init__(self, title: str) -> None:
        self.title = title

    def fail(self, path: str, problem: str) -> ValidationError:
        return ValidationError(self.title, [FieldError(path, problem)])

    def obj(self, value: Any, path: str, *, required: bool = False) -> dict[str, Any] | None:
        if value is None and not required:
            return None
        if type(value) is not dict:
            raise self.fail(path, f"must be an object, not {kind_of(value)}"
                            if value is not None else "is required")
        return value

    def eui(self, value: Any, path: str) -> str:
        if value is None:
            raise self.fail(path, "is required")
        if type(value) is not str or not _EUI.fullmatch(value):
            raise self.fail(path, "must be a DevEUI: 16 hex digits")
        return value.lower()

    def time(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if type(value) is str:
            try:
                parse_iso(value)
                return value
            except ValueError as exc:
                raise self.fail(path, f"must be an ISO 8601 date-time ({exc})") from None
        raise self.fail(path, f"must be an ISO 8601 date-time, not {kind_of(value)}")

    def integer(self, value: Any, path: str, *, default: int | None = 0,
                limit: int = 2**32 - 1) -> int | None:
        """A non-negative integer; protobuf's JSON may write 64-bit ones as strings."""
        if value is None:
            return default
        if type(value) is str and value.isdigit() and value.isascii() and len(value) <= 20:
            value = int(value)
        if type(value) is not int or not 0 <= value <= limit:
            raise self.fail(path, f"must be an integer between 0 and {limit}")
        return value

    def number(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if type(value) not in (int, float):
            raise self.fail(path, f"must be a number, not {kind_of(value)}")
        return value  # type: ignore[no-any-return]

    def base64(self, value: Any, path: str) -> bytes | None:
        if value is None:
            return None
        if type(value) is not str:
            raise self.fail(path, f"must be base64 text, not {kind_of(value)}")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise self.fail(path, "must be base64 text") from None

    def gateway_id(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if type(value) is not str or not 0 < len(value) <= MAX_GATEWAY_ID:
            raise self.fail(path, f"must be a string of 1..{MAX_GATEWAY_ID} characters")
        return value

    def items(self, value: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
        """The objects of a JSON array, each with its path (``rxInfo[2]``)."""
        if value is None:
            return []
        if type(value) is not list:
            raise self.fail(path, f"must be an array, not {kind_of(value)}")
        out = []
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            out.append((where, self.obj(item, where, required=True) or {}))
        return out
