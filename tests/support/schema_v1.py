"""Schema version 1's encoder, frozen as it was released (bridge/influx/schema.py before
version 2): what InfluxDB databases written by earlier devicedata releases hold. Tests
write these lines straight into InfluxDB and read them back through the API."""

from __future__ import annotations

from bridge.influx.schema import MEASUREMENT, variable_tag
from bridge.model.points import Point

_TAG_ESCAPE = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\="})


def _field_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_point_v1(p: Point) -> str:
    tags = f"{MEASUREMENT},device={p.device.translate(_TAG_ESCAPE)}"
    if p.slot:
        tags += f",slot={p.slot}"
    tags += f",variable={variable_tag(p.variable).translate(_TAG_ESCAPE)}"
    value = p.value
    if value is None:
        fields = ""
    elif value.__class__ is bool:
        fields = f',value_bool={"true" if value else "false"},value_type="boolean"'
    elif value.__class__ is str:
        fields = f',value_str={_field_str(value)},value_type="string"'
    else:
        fields = f',value={float(value)!r},value_type="number"'
    if p.unit is not None:
        fields += f",unit={_field_str(p.unit)}"
    if p.lat is not None and p.lng is not None:
        fields += f",lat={float(p.lat)!r},lng={float(p.lng)!r}"
    if p.metadata is not None:
        fields += f",metadata={_field_str(p.metadata)}"
    return f"{tags} created={p.created_ns}i{fields},group={_field_str(p.group)} {p.time_ns}"
