"""The JetStream API level this server implements (nats-server's JSApiLevel), and the check of
a request's `Nats-Required-Api-Level` header (errorOnRequiredApiLevel), shared by the API, the
stream's atomic batches, direct get and pull requests."""

from __future__ import annotations

from .store.base import header_value

API_LEVEL = 4


def required_level_error(hdr: bytes) -> bool:
    """Nats-Required-Api-Level asks for more than API_LEVEL, or is not a number."""
    v = header_value(hdr, b"Nats-Required-Api-Level")
    if not v:
        return False
    try:
        return int(v) > API_LEVEL
    except ValueError:
        return True
