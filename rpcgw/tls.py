"""``rpcgw cert``: a private certificate authority and server certificates for HTTPS.

Why a CA rather than one self-signed certificate: clients are told to trust a CA once
(``NODE_EXTRA_CA_CERTS=ca.pem`` for CALLR's Node SDK, ``SSL_CERT_FILE`` for Python's,
``curl --cacert``), and the server certificate can then be re-issued for new names or
when it expires without touching any client.  The CA is therefore created once in the
certificate directory and reused by every later ``rpcgw cert`` run.

Files in the directory (keys are written with mode 0600, certificates 0644)::

    ca.pem  ca-key.pem            the authority (10 years)
    server.pem  server-key.pem    the server certificate, re-issued on every run (397 days)

Keys are ECDSA P-256: every TLS stack in use (OpenSSL in Node, PHP, curl and Python, Go's
crypto/tls) accepts it, and it is generated in milliseconds.  397 days is the longest
validity Apple's and the browsers' rules accept for a server certificate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"
SERVER_CERT, SERVER_KEY = "server.pem", "server-key.pem"
CA_DAYS = 3650
SERVER_DAYS = 397
#: Certificates start a little in the past so a client whose clock lags still accepts them.
BACKDATE = dt.timedelta(minutes=5)

_DNS_LABEL = re.compile(r"^(\*|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)$")

Name = x509.DNSName | x509.IPAddress


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def parse_names(names: Sequence[str]) -> list[Name]:
    """Turn command-line host names and IP addresses into subjectAltName entries.

    Raises ValueError for anything that is neither, so a typo does not end up in a
    certificate that no client will ever match.
    """
    result: list[Name] = []
    for raw in names:
        name = raw.strip().rstrip(".")
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        try:
            ascii_name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{raw!r} is not a host name or an IP address") from None
        labels = ascii_name.split(".")
        if (not ascii_name or len(ascii_name) > 253
                or not all(_DNS_LABEL.match(label) for label in labels)
                or "*" in labels[1:]):
            raise ValueError(f"{raw!r} is not a host name or an IP address")
        result.append(x509.DNSName(ascii_name.lower()))
    if not result:
        raise ValueError("name at least one host name or IP address")
    return result


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file and rename, so a reader never sees half a key and
    a key is never, even briefly, readable by others."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_or_create_ca(directory: Path, *, now: dt.datetime | None = None) -> tuple[Authority, bool]:
    """The CA kept in ``directory``; created there if absent.  Returns (ca, created)."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() or key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not an EC private key")
        cert_public = cert.public_key()
        if (not isinstance(cert_public, ec.EllipticCurvePublicKey)
                or key.public_key().public_numbers() != cert_public.public_numbers()):
            raise ValueError(f"{key_path} does not belong to {cert_path}")
        return Authority(cert, key), False
    now = now or dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rpcgw"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "rpcgw local CA")])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return Authority(cert, key), True


def issue_server_cert(ca: Authority, names: Sequence[Name], *, days: int = SERVER_DAYS,
                      now: dt.datetime | None = None
                      ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A TLS server certificate for ``names`` signed by ``ca``.

    Clients match only the subjectAltName (RFC 6125), so every name goes there; the
    common name repeats the first one for humans reading the certificate.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    not_after = min(now + dt.timedelta(days=days), ca.cert.not_valid_after_utc)
    key = ec.generate_private_key(ec.SECP256R1())
    first = names[0].value
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rpcgw"),
                         x509.NameAttribute(NameOID.COMMON_NAME, str(first))])
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return cert, key


def make_certificates(directory: Path, names: Sequence[str], *,
                      days: int = SERVER_DAYS) -> tuple[Path, Path, bool]:
    """Create (or reuse) the CA in ``directory`` and issue ``server.pem`` for ``names``.

    Returns the server certificate path, its key path and whether the CA was new.
    """
    sans = parse_names(names)
    ca, created = load_or_create_ca(directory)
    cert, key = issue_server_cert(ca, sans, days=days)
    cert_path, key_path = directory / SERVER_CERT, directory / SERVER_KEY
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path, created


def cmd_cert(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    try:
        cert_path, key_path, created = make_certificates(directory, args.names, days=args.days)
    except ValueError as exc:
        print(f"rpcgw cert: {exc}", file=sys.stderr)
        return 2
    ca_path = directory / CA_CERT
    print(("created" if created else "reused") + f" certificate authority {ca_path}")
    print(f"server certificate {cert_path} for {', '.join(args.names)}")
    print(f"server key {key_path}")
    print(f"serve with: rpcgw serve --tls-cert {cert_path} --tls-key {key_path}")
    print(f"clients trust {ca_path}: NODE_EXTRA_CA_CERTS={ca_path} (Node), "
          f"SSL_CERT_FILE={ca_path} (Python, PHP, Go), curl --cacert {ca_path}")
    return 0


def add_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "cert", help="create a local CA and a server certificate for HTTPS",
        description="Create (once) a local certificate authority in DIR and issue "
                    "DIR/server.pem and DIR/server-key.pem for the given host names and IP "
                    "addresses; run again to re-issue for other names with the same CA.")
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="host name or IP address the server is reached by")
    parser.add_argument("--dir", default="certs", help="certificate directory (default: certs)")
    parser.add_argument("--days", type=int, default=SERVER_DAYS,
                        help=f"server certificate validity (default {SERVER_DAYS})")
    parser.set_defaults(func=cmd_cert)
