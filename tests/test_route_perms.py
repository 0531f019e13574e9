"""Route permissions (cluster `permissions { import, export }`): import filters the interest
we send to peers, export the interest we accept from them (nats-server canImport/canExport)."""

from __future__ import annotations

from pathlib import Path

from conftest import RawClient

from pynats_server import Options, Server
from pynats_server.config import apply_config_file

PEER = "NPEERBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
CONF = """
cluster {
  name: PERMS
  listen: "127.0.0.1:-1"
  permissions { import: { allow: ["foo.>"] }, export: { allow: ["bar.>"], deny: ["bar.secret"] } }
}
"""


async def peer_of(srv: Server) -> tuple[RawClient, dict]:
    assert srv.cluster is not None
    peer = await RawClient.open("127.0.0.1", srv.cluster.port)
    info = await peer.read_info()
    await peer.send(
        f'CONNECT {{"verbose":false,"pedantic":false,"headers":true,"name":"{PEER}","cluster":"PERMS"}}\r\n'
        f'INFO {{"server_id":"{PEER}","server_name":"peer","version":"2.9.10","proto":2,'
        f'"host":"127.0.0.1","port":1,"headers":true,"max_payload":1048576,"cluster":"PERMS"}}\r\n'.encode()
    )
    return peer, info


async def interest_lines(peer: RawClient) -> list[bytes]:
    await peer.send(b"PING\r\n")
    out = []
    while (line := await peer.read_line()) != b"PONG":
        if not line.startswith(b"RS+ $SYS") and not line.startswith(b"INFO "):
            out.append(line)
    return out


async def test_route_permissions(tmp_path: Path) -> None:
    (tmp_path / "c.conf").write_text(CONF)
    opts = Options(host="127.0.0.1", port=-1, no_log=True)
    apply_config_file(opts, str(tmp_path / "c.conf"))
    async with Server(opts) as srv:
        c = RawClient(*await __import__("asyncio").open_connection("127.0.0.1", srv.port))
        await c.connect()
        await c.send(b"SUB foo.x 1\r\nSUB baz 2\r\n")
        await c.ping()
        peer, info = await peer_of(srv)
        assert info["import"] == {"allow": ["foo.>"]}
        assert info["export"] == {"allow": ["bar.>"], "deny": ["bar.secret"]}
        # Only the interest we may import is sent.
        assert await interest_lines(peer) == [b"RS+ $G foo.x"]
        await c.send(b"SUB foo.y 3\r\nSUB baz.z 4\r\n")
        await c.ping()
        assert await interest_lines(peer) == [b"RS+ $G foo.y"]
        # Only the interest we may export is accepted.
        await peer.send(b"RS+ $G bar.x\r\nRS+ $G bar.secret\r\nRS+ $G qux\r\n")
        await interest_lines(peer)
        await c.send(b"PUB bar.x 1\r\na\r\nPUB bar.secret 1\r\nb\r\nPUB qux 1\r\nc\r\n")
        await c.ping()
        await peer.send(b"PING\r\n")
        got = []
        while (line := await peer.read_line()) != b"PONG":
            got.append(line)
        assert got == [b"RMSG $G bar.x 1", b"a"]
        await peer.close()
        await c.close()
