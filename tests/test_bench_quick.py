"""CI checks that `make bench` runs in its quick mode (speed itself is never asserted)."""

from __future__ import annotations

import json
import subprocess

from cluster_util import go_binary, repo_root


def test_make_bench_quick_mode_runs() -> None:
    go_binary("go214")
    root = repo_root()
    r = subprocess.run(
        ["make", "bench", "ARGS=--out ci-quick --no-chart -k pubsub_16b,pubsub_mixed,cluster_1x1"],
        cwd=root, capture_output=True, text=True, timeout=900,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    results = json.loads((root / "benchmarks" / "results" / "ci-quick.json").read_text())
    assert results
    assert "pubsub_mixed" in r.stdout and "go" in r.stdout
