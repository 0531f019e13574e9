"""`make demo`: the rolling-upgrade walkthrough (docs/seed-scenario.md), narrated.

Runs real `pynats-server` processes on free loopback ports with nats-py clients: two
servers listing the same routes, a subscriber, a temporary third server, each server
stopped and restarted (Ctrl-C, then lame duck mode), the seed-server variant, and what the
rotation cost the clients. It stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from .walkthrough import Walkthrough, pynats_command


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pynats_server.demo", description=__doc__)
    ap.add_argument("--server", action="append", default=[], metavar="CMD",
                    help="server command to use instead of pynats-server (e.g. a nats-server binary)")
    ap.add_argument("--logs", action="store_true", help="print the servers' logs at the end")
    args = ap.parse_args(argv)
    command = args.server or pynats_command()
    start = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - start:6.2f}s] {text}", flush=True)

    reports = []
    for mode, title in (("ctrl-c", "stopping servers with Ctrl-C"), ("ldm", "stopping servers with lame duck mode")):
        print(f"\n=== The rolling upgrade, {title} ===\n", flush=True)
        w = Walkthrough(command, stop_mode=mode, narrate=say, movers=8)
        try:
            reports.append(asyncio.run(w.run(seed_variant=(mode == "ctrl-c"))))
        except AssertionError as e:
            print(f"\nThe walkthrough failed: {e}", file=sys.stderr)
            return 1
        if args.logs:
            for n in w.nodes.values():
                print(f"\n--- log of server {n.name} ---\n{n.lines()}")
    print("\n=== What each step cost the clients ===\n")
    for r in reports:
        print(r.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
