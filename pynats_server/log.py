"""Log lines shaped like nats-server's: `[pid] 2006/01/02 15:04:05.000000 [INF] text`.

Harnesses (nats.py's test server, the nats.rs harness, ...) read these lines to find the
port and readiness, so the shape must not change.

Where the lines go, as nats-server's ConfigureLogger decides: the log file (`-l`), else a
remote syslog (`-r udp://host:514`, tcp:// or unix://), else the local syslog (`-s`), else
standard error. The file is rotated when it passes `log_size_limit` (renamed with a time
stamp, nats-server's names and notices), keeping `logfile_max_num - 1` old files, and
reopened on SIGUSR1 for outside rotation. `logtime_utc` stamps lines in UTC.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
import threading
import time
from typing import TextIO
from urllib.parse import urlsplit

# Syslog severities (RFC 5424) of nats-server's levels, and the daemon facility the local
# syslog gets (a remote one is dialled with facility 0, as Go's syslog.Dial(LOG_DEBUG)).
_SEVERITY = {"[INF]": 5, "[WRN]": 4, "[ERR]": 3, "[FTL]": 2, "[DBG]": 7, "[TRC]": 5}
_DAEMON = 3 << 3
_LOCAL_SOCKETS = ("/dev/log", "/var/run/syslog", "/var/run/log")


class SyslogError(OSError):
    """The syslog cannot be reached (nats-server: `error connecting to syslog: ...`)."""


def syslog_tag() -> str:
    """The program's name (nats-server's GetSysLoggerTag)."""
    return os.path.basename(sys.argv[0]) or "pynats-server"


class Syslog:
    """RFC 3164 lines as Go's log/syslog writes them: `<PRI>stamp host tag[pid]: text` to a
    remote daemon, `<PRI>stamp tag[pid]: text` (time.Stamp) to the local one."""

    def __init__(self, url: str = "") -> None:
        self.local = not url  # the short form (no host name): the local syslog and unix://
        self.facility = _DAEMON if self.local else 0
        self.sock: socket.socket
        if self.local:
            self.sock = self._local()
            self.stream = False
        else:
            u = urlsplit(url)
            if u.scheme in ("udp", "tcp"):
                host, port = u.hostname or "localhost", u.port or 514
                kind = socket.SOCK_DGRAM if u.scheme == "udp" else socket.SOCK_STREAM
                try:
                    infos = socket.getaddrinfo(host, port, type=kind)
                    self.sock = socket.socket(infos[0][0], kind)
                    self.sock.settimeout(2.0)
                    self.sock.connect(infos[0][4])
                except OSError as e:
                    raise SyslogError(f"error connecting to syslog: {e}") from None
                self.stream = u.scheme == "tcp"
            elif u.scheme == "unix":
                self.sock = self._unix(u.path)
                self.stream = False
                self.local = True
            else:
                raise SyslogError(f'error invalid network type: "{u.scheme}"')
        self.tag = syslog_tag()
        self.host = socket.gethostname()

    def _local(self) -> socket.socket:
        for path in _LOCAL_SOCKETS:
            if os.path.exists(path):
                return self._unix(path)
        raise SyslogError("error connecting to syslog: Unix syslog delivery error")

    def _unix(self, path: str) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.connect(path)
        except OSError as e:
            s.close()
            raise SyslogError(f"error connecting to syslog: {e}") from None
        return s

    def write(self, label: str, text: str) -> None:
        pri = self.facility | _SEVERITY[label]
        pid = os.getpid()
        if self.local:
            stamp = time.strftime("%b %e %H:%M:%S")
            line = f"<{pri}>{stamp} {self.tag}[{pid}]: {text}"
        else:
            stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds").replace("+00:00", "Z")
            line = f"<{pri}>{stamp} {self.host} {self.tag}[{pid}]: {text}"
        if not line.endswith("\n"):
            line += "\n"
        data = line.encode()
        try:
            if self.stream:
                self.sock.sendall(data)
            else:
                self.sock.send(data)
        except OSError:
            pass  # as Go's writer: a lost syslog line does not stop the server

    def close(self) -> None:
        self.sock.close()


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
        utc: bool = False,
        size_limit: int = 0,
        max_files: int = 0,
        syslog: bool = False,
        remote_syslog: str = "",
    ) -> None:
        self.debug_enabled = debug and enabled
        self.trace_enabled = trace and enabled
        self.enabled = enabled
        self.logtime = logtime
        self.utc = utc
        self._pid = f"[{os.getpid()}] "
        self._path = path
        self._own = False
        self._lock = threading.Lock()
        self._syslog: Syslog | None = None
        self._size = 0
        self._limit = 0
        self._max_files = 0
        if path:
            self._stream: TextIO = self._open(path)
            self._own = True
        else:
            self._stream = stream if stream is not None else sys.stderr
            if enabled and (remote_syslog or syslog):
                self._syslog = Syslog(remote_syslog)
        self.set_rotation(size_limit, max_files)

    def _open(self, path: str) -> TextIO:
        f = open(path, "a", buffering=1, encoding="utf-8", newline="")  # noqa: SIM115
        self._size = f.tell()
        return f

    def set_rotation(self, size_limit: int, max_files: int) -> None:
        """log_size_limit and logfile_max_num (file logs only)."""
        self._max_files = max(max_files, 0)
        self._limit = size_limit if self._own and size_limit > 0 else 0
        if self._limit and self._size > self._limit:
            self.notice("Rotating logfile...")  # nats-server's setLimit: this write rotates

    def _stamp(self, now: float) -> str:
        t = time.gmtime(now) if self.utc else time.localtime(now)
        return f"{time.strftime('%Y/%m/%d %H:%M:%S', t)}.{int(now % 1 * 1_000_000):06d} "

    def _write(self, label: str, text: str) -> None:
        if not self.enabled:
            return
        if self._syslog is not None:
            self._syslog.write(label, text)
            return
        stamp = self._stamp(time.time()) if self.logtime else ""
        line = f"{self._pid}{stamp}{label} {text}\n"
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
                if self._limit:
                    self._size += len(line.encode())
                    if self._size > self._limit:
                        self._rotate()
            except (ValueError, OSError):
                pass  # a closed stream (interpreter shutdown) must not take the server down

    def _direct(self, label: str, text: str) -> None:
        """nats-server's logDirect: local time, CRLF, straight into the (new) file."""
        now = time.time()
        stamp = f"{time.strftime('%Y/%m/%d %H:%M:%S', time.localtime(now))}.{int(now % 1 * 1_000_000):06d} "
        line = f"{self._pid}{stamp if self.logtime else ''}{label} {text}\r\n"
        self._stream.write(line)
        self._stream.flush()
        self._size += len(line.encode())

    def _rotate(self) -> None:
        """The file passed log_size_limit: rename it with a time stamp, start a new one,
        and drop the oldest backups beyond logfile_max_num - 1 (nats-server's names)."""
        self._stream.close()
        now = time.time()
        lt = time.localtime(now)
        ns = int(now % 1 * 1e9)
        bak = f"{self._path}.{time.strftime('%Y.%m.%d.%H.%M.%S', lt)}.{ns:09d}"
        try:
            os.rename(self._path, bak)
        except OSError:
            pass
        self._stream = self._open(self._path)
        self._size = 0
        self._direct("[INF]", f'Rotated log, backup saved as "{bak}"')
        if self._max_files > 0:
            self._purge()

    def _purge(self) -> None:
        d, base = os.path.split(self._path)
        d = d or "."
        try:
            names = sorted(os.listdir(d))
        except OSError as e:
            self._direct("[ERR]", f'Unable to read directory "{d}" for log purge ({e}), will attempt next rotation')
            return
        backups = [n for n in names if n.startswith(base + ".") and _is_stamp(n[len(base) + 1 :])]
        for name in backups[: max(len(backups) - (self._max_files - 1), 0)]:
            try:
                os.remove(os.path.join(d, name))
            except OSError as e:
                self._direct("[ERR]", f'Unable to remove backup log file "{name}" ({e}), will attempt next rotation')
                return
            self._direct("[INF]", f'Purged log file "{name}"')

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
                self._stream = self._open(self._path)

    def configure(self, *, debug: bool, trace: bool, logtime: bool, path: str, utc: bool = False,
                  size_limit: int = 0, max_files: int = 0) -> None:
        """New levels, time stamps or file (a configuration reload): this same object
        carries on, so everything holding it sees the change."""
        self.debug_enabled = debug and self.enabled
        self.trace_enabled = trace and self.enabled
        self.logtime = logtime
        self.utc = utc
        if path != self._path and self.enabled:
            with self._lock:
                if self._own:
                    self._stream.close()
                if path:
                    self._stream = self._open(path)
                    self._own = True
                else:
                    self._stream = sys.stderr
                    self._own = False
                self._path = path
        self.set_rotation(size_limit, max_files)

    def close(self) -> None:
        if self._own:
            with self._lock:
                self._stream.close()
            self._own = False
        if self._syslog is not None:
            self._syslog.close()
            self._syslog = None


def _is_stamp(s: str) -> bool:
    """`2006.01.02.15.04.05.999999999`, the suffix of a rotated log file."""
    parts = s.split(".")
    return len(parts) == 7 and all(p.isdigit() for p in parts) and len(parts[0]) == 4


def from_options(opts: object, stream: TextIO | None = None) -> Logger:
    """The logger the options ask for (raises SyslogError when the syslog is unreachable)."""
    o = opts  # an Options; typed loosely to keep this module free of imports
    return Logger(
        debug=o.debug, trace=o.trace, logtime=o.logtime, path=o.log_file,  # type: ignore[attr-defined]
        enabled=not o.no_log, utc=o.logtime_utc, size_limit=o.log_size_limit,  # type: ignore[attr-defined]
        max_files=o.log_max_num, syslog=o.syslog, remote_syslog=o.remote_syslog,  # type: ignore[attr-defined]
        stream=stream,
    )
