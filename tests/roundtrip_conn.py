"""A raw client connection for oracle tests: send a batch, then PING, and take everything
received before the PONG."""

from __future__ import annotations

import asyncio


class Conn:
    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.r, self.w, self.buf = r, w, b""

    async def roundtrip(self, data: bytes) -> bytes:
        """Send, then PING; return everything received before the PONG."""
        self.w.write(data + b"PING\r\n")
        await self.w.drain()
        while b"PONG\r\n" not in self.buf:
            chunk = await asyncio.wait_for(self.r.read(1 << 20), 5)
            assert chunk, "server closed the connection"
            self.buf += chunk
        before, _, self.buf = self.buf.partition(b"PONG\r\n")
        return before
