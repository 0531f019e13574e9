"""Applying a nats-server configuration file to Options (placeholder until conf.py lands)."""

from __future__ import annotations

from .options import Options


def apply_config_file(opts: Options, path: str) -> list[str]:
    from .cli import UsageError

    raise UsageError(f"configuration files are not supported yet (-c {path})")
