"""Certificates for the TLS cases, made fresh for every run (nothing that expires is committed).

One CA signs the server certificate (SAN 127.0.0.1 and localhost, for servers and for routes:
it carries both serverAuth and clientAuth) and the client certificates; a second CA ("other")
signs a client certificate that a verifying server must refuse. The client certificates have
chosen subjects and SANs for ``verify_and_map`` cases:

| name | subject | SANs |
|---|---|---|
| client | CN=client | - |
| alice | CN=alice | email alice@example.com |
| dns | CN=dns-user | DNS app.example.com |
| uri | CN=uri-user | URI spiffe://example.com/app |
| subj | O=Example, OU=nats, CN=subj (Go prints CN=subj,OU=nats,O=Example) | - |
| nobody | CN=nobody | - |
| other | CN=other, signed by the other CA | - |

Files (PEM) live in the run's work directory; transcripts and configs name them with
``{{tls.ca}}``, ``{{tls.other_ca}}``, ``{{tls.server_cert}}``, ``{{tls.server_key}}``,
``{{tls.NAME_cert}}`` and ``{{tls.NAME_key}}``.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# name -> (subject attributes in order, SANs as (kind, value))
CLIENTS: dict[str, tuple[list[tuple[x509.ObjectIdentifier, str]], list[tuple[str, str]]]] = {
    "client": ([(NameOID.COMMON_NAME, "client")], []),
    "alice": ([(NameOID.COMMON_NAME, "alice")], [("email", "alice@example.com")]),
    "dns": ([(NameOID.COMMON_NAME, "dns-user")], [("dns", "app.example.com")]),
    "uri": ([(NameOID.COMMON_NAME, "uri-user")], [("uri", "spiffe://example.com/app")]),
    "subj": (
        [
            (NameOID.ORGANIZATION_NAME, "Example"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "nats"),
            (NameOID.COMMON_NAME, "subj"),
        ],
        [],
    ),
    "nobody": ([(NameOID.COMMON_NAME, "nobody")], []),
}


def _name(attrs: list[tuple[x509.ObjectIdentifier, str]]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, v) for oid, v in attrs])


def _san(kind: str, value: str) -> x509.GeneralName:
    if kind == "dns":
        return x509.DNSName(value)
    if kind == "ip":
        return x509.IPAddress(ipaddress.ip_address(value))
    if kind == "email":
        return x509.RFC822Name(value)
    if kind == "uri":
        return x509.UniformResourceIdentifier(value)
    raise ValueError(kind)


class _CA:
    def __init__(self, cn: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name([(NameOID.ORGANIZATION_NAME, "conformance"), (NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self, subject: list[tuple[x509.ObjectIdentifier, str]], sans: list[tuple[str, str]]
    ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if sans:
            b = b.add_extension(
                x509.SubjectAlternativeName([_san(k, v) for k, v in sans]), critical=False
            )
        cert = b.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


class Certs:
    """The run's CA, server and client certificates, written as PEM files under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.files: dict[str, Path] = {}
        ca, other = _CA("conformance CA"), _CA("other CA")
        self._write("ca", ca.cert.public_bytes(serialization.Encoding.PEM))
        self._write("other_ca", other.cert.public_bytes(serialization.Encoding.PEM))
        cert, key = ca.issue(
            [(NameOID.COMMON_NAME, "localhost")], [("ip", "127.0.0.1"), ("dns", "localhost")]
        )
        self._write("server_cert", cert)
        self._write("server_key", key)
        for name, (subject, sans) in CLIENTS.items():
            cert, key = ca.issue(subject, sans)
            self._write(f"{name}_cert", cert)
            self._write(f"{name}_key", key)
        cert, key = other.issue([(NameOID.COMMON_NAME, "other")], [])
        self._write("other_cert", cert)
        self._write("other_key", key)

    def _write(self, name: str, data: bytes) -> None:
        p = self.dir / f"tls-{name}.pem"
        p.write_bytes(data)
        self.files[name] = p

    def path(self, name: str) -> str:
        """``ca``, ``other_ca``, ``server_cert``, ``server_key``, ``NAME_cert``, ``NAME_key``."""
        if name not in self.files:
            raise KeyError(f"no certificate file {name!r}; known: {sorted(self.files)}")
        return str(self.files[name])

    def client_context(self, cert: str | None = None, verify: bool = True) -> ssl.SSLContext:
        """A client-side context trusting our CA (server name 127.0.0.1), with a client cert."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.path("ca"))
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(self.path(f"{cert}_cert"), self.path(f"{cert}_key"))
        return ctx


_LOCK = threading.Lock()
_BY_DIR: dict[Path, Certs] = {}


def for_workdir(workdir: Path) -> Certs:
    """The run's certificates (made on first use, once per work directory)."""
    with _LOCK:
        c = _BY_DIR.get(workdir)
        if c is None:
            c = _BY_DIR[workdir] = Certs(workdir)
        return c
