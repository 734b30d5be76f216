"""The ``devicedata`` command line: runs the API and the bridge, manages the registry and
starts a local stack. It composes ``bridge`` and ``api``; neither imports it."""
