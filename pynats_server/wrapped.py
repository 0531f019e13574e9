"""A transport in front of the socket's transport (TLS, WebSocket framing): the base that passes
on every call the server makes besides writing (write buffer size for slow consumers,
pause/resume reading for back-pressure, close)."""

from __future__ import annotations

from typing import Any


class WrappedTransport:
    """Subclasses define `write` (what reaches the socket); the rest goes to `raw`."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write(self, data: Any) -> None:
        raise NotImplementedError

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def get_write_buffer_size(self) -> int:
        return int(self.raw.get_write_buffer_size())

    def close(self) -> None:
        self.raw.close()

    def abort(self) -> None:
        self.raw.abort()

    def is_closing(self) -> bool:
        return bool(self.raw.is_closing())

    def pause_reading(self) -> None:
        self.raw.pause_reading()

    def resume_reading(self) -> None:
        self.raw.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.raw.get_extra_info(name, default)
