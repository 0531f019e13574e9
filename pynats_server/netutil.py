"""Host and address helpers: the machine's own IPs, host:port parsing, URL formatting."""

from __future__ import annotations

import fcntl
import ipaddress
import random
import socket
import struct

SIOCGIFADDR = 0x8915


def is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_global_unicast(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # Go's IP.IsGlobalUnicast: not loopback, link-local, multicast or unspecified.
    return not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified)


def non_local_ips() -> list[str]:
    """The machine's global unicast addresses, as nats-server lists them for 0.0.0.0."""
    ips: list[str] = []
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        names = []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for name in names:
            try:
                res = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue
            ip4 = ipaddress.ip_address(socket.inet_ntoa(res[20:24]))
            if _is_global_unicast(ip4) and str(ip4) not in ips:
                ips.append(str(ip4))
    finally:
        s.close()
    try:
        with open("/proc/net/if_inet6", encoding="ascii") as f:
            for line in f:
                raw = line.split()[0]
                ip6 = ipaddress.IPv6Address(int(raw, 16))
                if _is_global_unicast(ip6) and str(ip6) not in ips:
                    ips.append(str(ip6))
    except OSError:
        pass
    return ips


def join_host_port(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """`host[:port]` (IPv6 in brackets) -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        end = text.index("]")
        host = text[1:end]
        rest = text[end + 1 :]
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def go_split_host_port(text: str) -> tuple[str, str]:
    """Go's net.SplitHostPort; ValueError when it fails."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not text[end + 1 :].startswith(":"):
            raise ValueError(text)
        return text[1:end], text[end + 2 :]
    host, sep, port = text.rpartition(":")
    if not sep or ":" in host or "[" in host or "]" in host:
        raise ValueError(text)
    return host, port


def connect_urls(advertise: str, host: str, port: int) -> list[str]:
    """The `host:port` URLs clients can use (nats-server getConnectURLs): never 0.0.0.0."""
    if advertise:
        h, p = split_host_port(advertise, port)
        return [join_host_port(h, p)]
    if is_unspecified(host):
        return [join_host_port(ip, port) for ip in non_local_ips()]
    return [join_host_port(host, port)]


def listen_urls(scheme: str, host: str, port: int) -> list[str]:
    """URLs for the ports file: an unspecified host expands to the machine's IPs."""
    if is_unspecified(host):
        ips = non_local_ips() or ["127.0.0.1"]
        return [f"{scheme}://{join_host_port(ip, port)}" for ip in ips]
    return [f"{scheme}://{join_host_port(host, port)}"]


_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def free_port(host: str = "127.0.0.1") -> int:
    """A free port for a server that cannot take port 0 (or keeps its port across restarts).

    Taken below the kernel's ephemeral range where there is one: a port from that range
    can be taken as the source port of some outgoing connection while its node is down,
    and the restart then fails with "address already in use".
    """
    low = _ephemeral_low()
    if low > 12000:
        for _ in range(200):
            port = random.randrange(10000, low)
            if port in _handed_out:
                continue
            with socket.socket() as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
