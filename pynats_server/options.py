"""Server options, with nats-server's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import const


@dataclass
class RouteURL:
    """A route to dial: `nats-route://[user:pass@]host:port`."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None
    scheme: str = "nats-route"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def redacted(self) -> str:
        auth = f"{self.user}:xxxxx@" if self.user else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}"


@dataclass
class Permissions:
    """A user's allow and deny lists (subscribe entries may be `subject queue`)."""

    publish_allow: list[str] | None = None
    publish_deny: list[str] | None = None
    subscribe_allow: list[str] | None = None
    subscribe_deny: list[str] | None = None


@dataclass
class User:
    user: str
    password: str = ""
    permissions: Permissions | None = None
    account: str = ""  # the account the user belongs to ("": the global account)


@dataclass
class ExportConfig:
    """One entry of an account's `exports` (a stream or a service)."""

    subject: str
    service: bool = False
    accounts: list[str] | None = None  # None: public
    response_type: str = "Singleton"
    response_threshold: float = 0.0  # 0: nats-server's default (2 minutes)
    account_token_position: int = 0


@dataclass
class ImportConfig:
    """One entry of an account's `imports`: `subject` of `account`, seen here as `to`."""

    account: str
    subject: str
    service: bool = False
    to: str = ""
    prefix: str = ""
    share: bool = False


@dataclass
class AccountConfig:
    name: str
    exports: list[ExportConfig] = field(default_factory=list)
    imports: list[ImportConfig] = field(default_factory=list)
    default_permissions: Permissions | None = None


@dataclass
class ClusterOptions:
    host: str = ""  # empty: no cluster listener
    port: int = 0  # -1: random
    name: str = ""  # empty: a generated (dynamic) name
    advertise: str = ""
    no_advertise: bool = False
    connect_retries: int = 0
    user: str | None = None
    password: str | None = None
    auth_timeout: float = const.AUTH_TIMEOUT
    ping_interval: float = 0.0  # 0: the server's ping_interval, capped at 30 s
    ping_max: int = 0
    routes: list[RouteURL] = field(default_factory=list)
    # Route permissions: import (publish lists) filters the interest we send, export
    # (subscribe lists) the interest we accept (nats-server setRoutePermissions).
    permissions: Permissions | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.host) or self.port != 0


@dataclass
class Options:
    host: str = const.DEFAULT_HOST
    port: int = const.DEFAULT_PORT
    server_name: str = ""
    client_advertise: str = ""

    max_payload: int = const.MAX_PAYLOAD_SIZE
    max_control_line: int = const.MAX_CONTROL_LINE_SIZE
    max_pending: int = const.MAX_PENDING_SIZE
    max_connections: int = const.DEFAULT_MAX_CONNECTIONS
    max_subscriptions: int = 0  # per connection; 0: no limit

    ping_interval: float = const.DEFAULT_PING_INTERVAL
    ping_max: int = const.DEFAULT_PING_MAX_OUT
    write_deadline: float = const.DEFAULT_WRITE_DEADLINE
    no_header_support: bool = False

    # Simple authentication (full users and permissions are a later addition).
    username: str | None = None
    password: str | None = None
    authorization: str | None = None  # token
    users: list[User] = field(default_factory=list)
    auth_timeout: float = const.AUTH_TIMEOUT

    # Accounts (config file `accounts {}`); users name theirs in User.account.
    accounts: list[AccountConfig] = field(default_factory=list)
    system_account: str = ""  # "": $SYS, unless no_system_account
    no_system_account: bool = False

    # Monitoring: 0 disables it, -1 picks a random port.
    http_host: str = ""
    http_port: int = 0

    cluster: ClusterOptions = field(default_factory=ClusterOptions)

    lame_duck_duration: float = const.DEFAULT_LAME_DUCK_DURATION
    lame_duck_grace_period: float = const.DEFAULT_LAME_DUCK_GRACE_PERIOD

    # Logging
    debug: bool = False
    trace: bool = False
    trace_verbose: bool = False
    logtime: bool = True
    log_file: str = ""
    no_log: bool = False

    pid_file: str = ""
    ports_file_dir: str = ""
    config_file: str = ""

    # The event loop for the CLI: "auto" (uvloop when installed), "uvloop" or "asyncio".
    loop: str = "auto"

    @property
    def auth_required(self) -> bool:
        return bool(self.username or self.authorization or self.users)
