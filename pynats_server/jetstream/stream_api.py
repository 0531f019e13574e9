"""The stream endpoints of the API: STREAM.CREATE, INFO, DELETE (more land with issue 11)."""

from __future__ import annotations

import time

from . import errors
from .api import Request, endpoint
from .errors import api_error
from .stream import Stream, normalize_config

T_CREATE = "io.nats.jetstream.api.v1.stream_create_response"
T_INFO = "io.nats.jetstream.api.v1.stream_info_response"
T_DELETE = "io.nats.jetstream.api.v1.stream_delete_response"


def _stream(req: Request, name: str) -> Stream:
    assert req.jsa is not None
    s = req.jsa.streams.get(name)
    if s is None:
        raise api_error(errors.STREAM_NOT_FOUND)
    return s


@endpoint("$JS.API.STREAM.CREATE.*")
def stream_create(req: Request) -> None:
    jsa = req.jsa
    assert jsa is not None
    name = req.tokens[-1]
    body = req.json_body()
    if body.get("name", "") != name:
        raise api_error(errors.STREAM_MISMATCH)
    cfg = normalize_config(body)
    old = jsa.streams.get(name)
    if old is not None:
        if old.config != cfg:
            raise api_error(errors.STREAM_NAME_EXIST)
    else:
        old = Stream(jsa, cfg, time.time())
        jsa.streams[name] = old
        old.start()
    req.respond({"type": T_CREATE, **old.info_json(), "did_create": True})


@endpoint("$JS.API.STREAM.INFO.*")
def stream_info(req: Request) -> None:
    try:
        s = _stream(req, req.tokens[-1])
    except errors.ApiError as e:
        req.error(T_INFO, e, total=0, offset=0, limit=0)
        return
    req.respond({"type": T_INFO, "total": 0, "offset": 0, "limit": 0, **s.info_json()})


@endpoint("$JS.API.STREAM.DELETE.*")
def stream_delete(req: Request) -> None:
    _stream(req, req.tokens[-1]).delete()
    req.respond({"type": T_DELETE, "success": True})
