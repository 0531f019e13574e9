"""Loading an account's streams (and their consumers) from its store directory at start."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from .consumer_api import load_consumers
from .store import ErrStoreCorrupt, StoreError
from .stream import META_FILE, Stream

if TYPE_CHECKING:
    from .jsaccount import JsAccount


def load_account(jsa: JsAccount) -> None:
    """Every stream stored under the account's directory comes back, with its de-duplication
    ids of the last window. One that cannot be read is logged with its directory and file,
    and the others are still served."""
    root = os.path.join(jsa.store_dir, "streams")
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return
    log = jsa.js.server.log
    loaded: list[Stream] = []
    for name in names:
        sdir = os.path.join(root, name)
        path = os.path.join(sdir, META_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                meta = json.load(f)
            s = Stream(jsa, meta["config"], float(meta["created"]), recovered=True)
        except ErrStoreCorrupt as e:
            log.warn(f'Error recovering stream "{name}" in account "{jsa.account.name}" '
                     f'(directory {e.directory}, file {e.file}): {e.detail}')  # fmt: skip
            continue
        except (OSError, ValueError, KeyError, TypeError, StoreError) as e:
            log.warn(f'Error recovering stream "{name}" in account "{jsa.account.name}" '
                     f"(directory {sdir}, file {path}): {e}")  # fmt: skip
            continue
        jsa.streams[s.name] = s
        loaded.append(s)
        notes = getattr(s.store, "recovery_notes", None)
        for note in notes or ():
            log.warn(f"Stream '{jsa.account.name} > {s.name}': {note}")
        log.notice(f"  Restored {s.store.fast_state().msgs:,} messages for stream '{jsa.account.name} > {s.name}'")
    # Start once all are loaded: mirrors and sources find their origins. A stream's
    # consumers come back once it runs (they subscribe through its client).
    for s in loaded:
        s.start()
        load_consumers(s)
