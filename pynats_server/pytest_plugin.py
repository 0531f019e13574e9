"""pytest fixtures, registered as a `pytest11` entry point: any project that installs
pynats-server gets them.

- `nats_server`: a fresh server for one test (127.0.0.1, random port); `.client_url`.
- `nats_server_session`: one server for the whole session.
- `nats_server_js`: a fresh server with JetStream, its store in the test's `tmp_path`.
- `nats_server_factory`: start servers with options, e.g. `nats_server_factory(max_payload=1024)`
  or `nats_server_factory(jetstream=True)` (a temporary store) / `jetstream=some_dir`.
- `nats_cluster`: three routed nodes (a full mesh); `.client_urls`, `.restart_node(i)`.
- `nats_cluster_factory`: clusters of any size, e.g. `nats_cluster_factory(5)`.

They are thread-backed, so they work for sync and async tests alike, whatever event loop
the test uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .testing import ThreadedCluster, ThreadedServer


@pytest.fixture
def nats_server_factory() -> Iterator[Callable[..., ThreadedServer]]:
    started: list[ThreadedServer] = []

    def make(**overrides: Any) -> ThreadedServer:
        srv = ThreadedServer(**overrides).start()
        started.append(srv)
        return srv

    yield make
    for srv in reversed(started):
        srv.stop()


@pytest.fixture
def nats_server() -> Iterator[ThreadedServer]:
    with ThreadedServer() as srv:
        yield srv


@pytest.fixture
def nats_server_js(tmp_path: Any) -> Iterator[ThreadedServer]:
    with ThreadedServer(jetstream=tmp_path / "jetstream") as srv:
        yield srv


@pytest.fixture(scope="session")
def nats_server_session() -> Iterator[ThreadedServer]:
    with ThreadedServer() as srv:
        yield srv


@pytest.fixture
def nats_cluster_factory() -> Iterator[Callable[..., ThreadedCluster]]:
    started: list[ThreadedCluster] = []

    def make(size: int = 3, **kwargs: Any) -> ThreadedCluster:
        cl = ThreadedCluster(size, **kwargs).start()
        started.append(cl)
        return cl

    yield make
    for cl in reversed(started):
        cl.stop()


@pytest.fixture
def nats_cluster() -> Iterator[ThreadedCluster]:
    with ThreadedCluster(3) as cl:
        yield cl
