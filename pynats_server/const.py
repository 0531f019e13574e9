"""Defaults and limits, with the nats-server (server/const.go) value for each."""

from __future__ import annotations

__version__ = "0.1.0"

# The nats-server release whose client and route protocols we speak. Clients compare this
# with semver to decide on features (headers need >= 2.2), so INFO carries it, not ours.
NATS_VERSION = "2.14.0"

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 4222
DEFAULT_CLUSTER_PORT = 6222
RANDOM_PORT = -1

MAX_CONTROL_LINE_SIZE = 4096
MAX_PAYLOAD_SIZE = 1024 * 1024
MAX_PAYLOAD_MAX_SIZE = 8 * 1024 * 1024  # above this nats-server warns at start-up
MAX_PENDING_SIZE = 64 * 1024 * 1024
# A read at least this big may be followed by more in the same event loop turn (uvloop's
# buffer is 256 KiB): the connection then yields (Connection.yield_reads).
FULL_READ = 64 * 1024
DEFAULT_MAX_CONNECTIONS = 64 * 1024

AUTH_TIMEOUT = 2.0
DEFAULT_PING_INTERVAL = 120.0
DEFAULT_PING_MAX_OUT = 2
FIRST_CLIENT_PING_INTERVAL = 2.0
FIRST_ROUTE_PING_INTERVAL = 1.0
ROUTE_MAX_PING_INTERVAL = 30.0
# How long a route replaced by a duplicate is read for messages already sent on it.
ROUTE_RETIRE_GRACE = 10.0
DEFAULT_WRITE_DEADLINE = 10.0
TLS_TIMEOUT = 2.0

DEFAULT_ROUTE_CONNECT = 1.0
DEFAULT_ROUTE_CONNECT_MAX = 30.0
DEFAULT_ROUTE_RECONNECT = 1.0
DEFAULT_ROUTE_DIAL = 1.0

DEFAULT_LAME_DUCK_DURATION = 120.0
DEFAULT_LAME_DUCK_GRACE_PERIOD = 10.0
LAME_DUCK_MIN_DURATION = 30.0

# Client protocol levels sent in CONNECT "protocol".
CLIENT_PROTO_ZERO = 0
CLIENT_PROTO_INFO = 1

# The route protocol level we advertise: 2.9's. 3 would tell 2.14 that we understand
# message tracing.
ROUTE_PROTO = 2

GLOBAL_ACCOUNT = "$G"
SYSTEM_ACCOUNT = "$SYS"

# Client ids start above the ids nats-server gives its internal clients.
FIRST_CLIENT_ID = 5
# Closed connections kept for /connz?state=closed (nats-server's DEFAULT_MAX_CLOSED_CLIENTS).
DEFAULT_MAX_CLOSED_CLIENTS = 10_000
