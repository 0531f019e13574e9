"""A slow consumer is cut off without slowing anyone else (protocol.md 2: no -ERR)."""

from __future__ import annotations

import asyncio
import time

from conftest import TIMEOUT, Closed

MSG_SIZE = 1024
BATCH = 64  # messages per publisher write (~66 KB, well under max_pending)
# A bound on the load: far more than the never-read socket's kernel buffers plus max_pending.
MAX_MSGS = 32768


async def test_slow_consumer_is_cut_off(start_server) -> None:
    s = await start_server(max_pending=256 * 1024, max_payload=64 * 1024, http_port=-1)

    # A subscriber that never reads, with a small receive buffer (its StreamReader also
    # stops reading from the socket at 2 x 4 KiB).
    slow = await s.client(rcvbuf=4096)
    await slow.connect()
    await slow.send(b"SUB data 1\r\n")
    await slow.ping()

    fast = await s.connected()
    await fast.send(b"SUB data 1\r\n")
    await fast.ping()

    received: list[int] = []
    progress = asyncio.Event()

    async def read_fast() -> None:
        while True:
            line, body = await fast.read_msg(timeout=TIMEOUT * 2)
            assert line == b"MSG data 1 %d" % MSG_SIZE, line
            received.append(int(body[:8]))
            progress.set()

    reader = asyncio.create_task(read_fast())

    async def slow_consumers() -> int:
        if s.srv is not None:
            return s.srv.slow_consumers
        return (await s.varz())["slow_consumers"]

    pub = await s.connected()
    pad = b"." * (MSG_SIZE - 8)
    sent = 0
    extra = None  # batches still to send after the cut
    try:
        while sent < MAX_MSGS and extra != 0:
            t0 = time.monotonic()
            await pub.send(b"".join(b"PUB data %d\r\n%08d%s\r\n" % (MSG_SIZE, i, pad) for i in range(sent, sent + BATCH)))
            assert time.monotonic() - t0 < 2.0, "the publisher was blocked"
            sent += BATCH
            # Pace on the fast subscriber (event driven, with a deadline), not on the slow one.
            deadline = time.monotonic() + TIMEOUT
            while len(received) < sent:
                assert not reader.done(), reader.exception()
                progress.clear()
                left = deadline - time.monotonic()
                assert left > 0, f"the fast subscriber stalled at {len(received)}/{sent}"
                try:
                    await asyncio.wait_for(progress.wait(), left)
                except asyncio.TimeoutError:
                    pass
            if extra is None and sent % (8 * BATCH) == 0 and await slow_consumers():
                extra = 8
            elif extra:
                extra -= 1
        assert extra == 0, f"no slow consumer after {sent} messages"
        # The publisher is fine: a PING is answered at once.
        await pub.ping()
    finally:
        reader.cancel()
    assert received == list(range(sent))
    assert (await s.varz())["slow_consumers"] == 1

    # The slow connection was closed, and no -ERR was sent to it: read what it got.
    data = b""
    deadline = time.monotonic() + TIMEOUT * 2
    while True:
        try:
            await slow._fill(deadline)
        except Closed:
            break
        data += slow.buf
        slow.buf = b""
    assert b"-ERR" not in data
    # What it got before the cut starts with the first message.
    assert data.startswith(b"MSG data 1 %d\r\n00000000" % MSG_SIZE)

    # The publisher and the fast subscriber are still fine.
    assert await pub.is_open()
    assert await fast.is_open()
