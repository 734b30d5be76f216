"""``devicedata`` console script: one parser, subcommands contributed by sibling modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bridge.errors import DeviceDataError
from bridge.settings import Settings


def _settings_loader() -> Settings:
    return Settings.from_env()


def build_parser() -> argparse.ArgumentParser:
    from devicedata import registry_cli, serve, stack

    parser = argparse.ArgumentParser(
        prog="devicedata",
        description="Self-hosted, TagoIO-compatible device data: MQTT and HTTP into InfluxDB.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_commands(sub, _settings_loader)
    registry_cli.add_commands(sub, _settings_loader, on_device_deleted=serve.delete_device_data)
    stack.add_commands(sub, _settings_loader)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except DeviceDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # settings that cannot be read
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
