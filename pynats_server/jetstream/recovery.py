"""Loading an account's streams (and their consumers) from its store directory at start."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from .consumer_api import load_consumers
from .stream import META_FILE, Stream

if TYPE_CHECKING:
    from .engine import JsAccount


def load_account(jsa: JsAccount) -> None:
    """Every stream stored under the account's directory comes back. One that cannot be read
    is logged with its directory and file, and the others are still served."""
    root = os.path.join(jsa.store_dir, "streams")
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return
    log = jsa.js.server.log
    for name in names:
        path = os.path.join(root, name, META_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                meta = json.load(f)
            s = Stream(jsa, meta["config"], float(meta["created"]), recovered=True)
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warn(f'Error recovering stream "{name}" in account "{jsa.account.name}" ({path}): {e}')
            continue
        jsa.streams[s.name] = s
        s.start()
        log.notice(f"  Restored {s.store.fast_state().msgs:,} messages for stream '{jsa.account.name} > {s.name}'")
        load_consumers(s)
