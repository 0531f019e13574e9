"""Loading an account's streams and consumers from its store directory at start."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import JsAccount


def load_account(jsa: JsAccount) -> None:
    """Streams stored under the account's directory come back (none yet: streams land next)."""
    return None
