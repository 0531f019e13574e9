"""The API endpoints: this module imports every module that registers some (api.endpoint),
and holds the account-level ones."""

from __future__ import annotations

from typing import Any

from . import (
    consumer_api,  # noqa: F401  - registers the consumer endpoints
    stream_api,  # noqa: F401  - registers the stream endpoints
)
from .api import Request, endpoint
from .versioning import API_LEVEL


@endpoint("$JS.API.INFO")
def account_info(req: Request) -> None:
    jsa = req.jsa
    assert jsa is not None
    mem, sto = jsa.usage()
    rmem, rsto = jsa.reserved()
    answer: dict[str, Any] = {
        "type": "io.nats.jetstream.api.v1.account_info_response",
        "memory": mem,
        "storage": sto,
        "reserved_memory": rmem,
        "reserved_storage": rsto,
        "streams": len(jsa.streams),
        "consumers": jsa.num_consumers(),
        "limits": jsa.limits_json(),
    }
    if req.js.opts.domain:
        answer["domain"] = req.js.opts.domain
    answer["api"] = {"level": API_LEVEL, "total": jsa.api_total, "errors": jsa.api_errors}
    req.respond(answer)
