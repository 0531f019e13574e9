"""Log lines shaped like nats-server's: `[pid] 2006/01/02 15:04:05.000000 [INF] text`.

Harnesses (nats.py's test server, the nats.rs harness, ...) read these lines to find the
port and readiness, so the shape must not change.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO


class Logger:
    def __init__(
        self,
        *,
        debug: bool = False,
        trace: bool = False,
        logtime: bool = True,
        stream: TextIO | None = None,
        path: str = "",
        enabled: bool = True,
    ) -> None:
        self.debug_enabled = debug and enabled
        self.trace_enabled = trace and enabled
        self.enabled = enabled
        self.logtime = logtime
        self._pid = f"[{os.getpid()}] "
        self._path = path
        self._own = False
        self._lock = threading.Lock()
        if path:
            self._stream: TextIO = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
            self._own = True
        else:
            self._stream = stream if stream is not None else sys.stderr

    def _write(self, label: str, text: str) -> None:
        if not self.enabled:
            return
        if self.logtime:
            now = time.time()
            stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now))
            line = f"{self._pid}{stamp}.{int(now % 1 * 1_000_000):06d} {label} {text}\n"
        else:
            line = f"{self._pid}{label} {text}\n"
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (ValueError, OSError):
                pass  # a closed stream (interpreter shutdown) must not take the server down

    def notice(self, text: str) -> None:
        self._write("[INF]", text)

    info = notice

    def warn(self, text: str) -> None:
        self._write("[WRN]", text)

    def error(self, text: str) -> None:
        self._write("[ERR]", text)

    def fatal(self, text: str) -> None:
        self._write("[FTL]", text)

    def debug(self, text: str) -> None:
        if self.debug_enabled:
            self._write("[DBG]", text)

    def trace(self, text: str) -> None:
        if self.trace_enabled:
            self._write("[TRC]", text)

    def reopen(self) -> None:
        """SIGUSR1: reopen the log file (log rotation)."""
        if self._own:
            with self._lock:
                self._stream.close()
                self._stream = open(self._path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def configure(self, *, debug: bool, trace: bool, logtime: bool, path: str) -> None:
        """New levels, time stamps or file (a configuration reload): this same object
        carries on, so everything holding it sees the change."""
        self.debug_enabled = debug and self.enabled
        self.trace_enabled = trace and self.enabled
        self.logtime = logtime
        if path == self._path or not self.enabled:
            return
        with self._lock:
            if self._own:
                self._stream.close()
            if path:
                self._stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
                self._own = True
            else:
                self._stream = sys.stderr
                self._own = False
            self._path = path

    def close(self) -> None:
        if self._own:
            with self._lock:
                self._stream.close()
            self._own = False
