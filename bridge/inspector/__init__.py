"""The live inspector: what reaches a device, and why it was refused, shown to an admin
watching that device, from every bridge and API process, within about a second.

How events travel (all over our Mosquitto, on topics only the bridge's broker user may
read or write; the ACL gives devices nothing outside ``devices/{own id}/...``):

- **Watching.** An API process with an admin watching device D publishes a *lease*, a
  retained message ``devicedata/inspect/watch/D/{watcher}`` = ``{"until": epoch s}``,
  renewed while the admin's page keeps polling and cleared (an empty retained message)
  when it stops. A crashed watcher's lease simply runs out.
- **Publishing.** Every bridge and API process subscribes to the leases (retained, so a
  process started later learns them at once) and keeps them in a dict (``Tap``). For
  each message or request it asks ``tap.watching(device)``: one dict look-up, and the
  only cost when nobody watches. For a watched device it publishes one event (QoS 0,
  payload cut to ``PAYLOAD_PREVIEW`` bytes, at most ``rate`` a second per device) to
  ``devicedata/inspect/events/D``.
- **Showing.** API processes subscribe to the events and keep, per watched device, the
  newest ``capacity`` of them in a ring (``Feed``); the page long-polls for those after
  the last it has. Memory is bounded by capacity x watched devices x event size.

``events`` holds the shapes and topics, ``tap`` the publishing side, ``feed`` the
watching side, ``link`` the API process's broker connection that feeds both.
"""
