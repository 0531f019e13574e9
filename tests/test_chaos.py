"""The chaos soak's short form (about a minute): a mixed cluster (embedded pynats-server,
pynats-server and nats-server 2.14 processes) under nats-py load, faults injected at random
for 30 s, then every invariant checked (see chaos_soak.py; `make soak` runs it longer).

The seed is random unless SOAK_SEED is set; a failure prints it, and the report."""

from __future__ import annotations

import io
import os
import random

from chaos_soak import Soak
from cluster_util import go_binary


async def test_chaos_short() -> None:
    go_binary("go214")  # skip (or fail under CI) without the Go build
    seed = int(os.environ.get("SOAK_SEED", 0) or random.randrange(1 << 30))
    seconds = float(os.environ.get("SOAK_SECONDS", 30))
    out = io.StringIO()
    st = await Soak(seed=seed, seconds=seconds, kinds=["embedded", "py", "go", "py"], rate=15, out=out).run()
    print(out.getvalue())
    assert not st.violations, f"chaos soak seed {seed} failed:\n{out.getvalue()}"
    assert len(st.faults) >= 5 and sum(st.received.values()) > 0
