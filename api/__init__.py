"""The HTTP face of ``bridge``: a Starlette app serving the TagoIO-compatible /data API."""
