"""The dev mesh's own certificate authority and edge certificate, made once and reused."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Names the edge answers to on one machine; browsers and gRPC check them.
EDGE_DNS_NAMES = ("localhost",)
EDGE_IP_ADDRESSES = ("127.0.0.1", "::1")
CA_LIFETIME = datetime.timedelta(days=3650)
# Short enough to be renewed by a restart now and then, as real certificates are.
LEAF_LIFETIME = datetime.timedelta(days=90)
# A certificate this close to its end is replaced at start, not served.
RENEW_BEFORE = datetime.timedelta(days=7)


@dataclass(frozen=True)
class EdgeTls:
    """Where the edge's TLS files are."""

    ca_path: Path
    cert_path: Path
    key_path: Path


def ensure_edge_tls(folder: Path, *, now: datetime.datetime | None = None) -> EdgeTls:
    """The CA and edge certificate in `folder`, made (or remade) unless valid ones exist.

    Args:
        folder: Where the files live (`.mesh/tls/`): ca.pem, ca-key.pem, edge.pem, edge-key.pem.
        now: The current time (tests move it).

    Returns:
        The paths Envoy and clients use.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    folder.mkdir(parents=True, exist_ok=True)
    files = EdgeTls(folder / "ca.pem", folder / "edge.pem", folder / "edge-key.pem")
    ca_key_path = folder / "ca-key.pem"
    ca = _load_valid_ca(files.ca_path, ca_key_path, now)
    if ca is None:
        ca = _make_ca(now)
        _write_key(ca_key_path, ca[1])
        files.ca_path.write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    ca_cert, ca_key = ca
    if not _leaf_is_valid(files.cert_path, files.key_path, ca_cert, now):
        cert, key = _make_leaf(ca_cert, ca_key, now)
        _write_key(files.key_path, key)
        files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _fresh(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now and now + RENEW_BEFORE < cert.not_valid_after_utc


def _load_valid_ca(
    cert_path: Path, key_path: Path, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _fresh(cert, now):
        return None
    if cert.public_key() != key.public_key():
        return None
    return cert, key


def _leaf_is_valid(
    cert_path: Path, key_path: Path, ca: x509.Certificate, now: datetime.datetime
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    wanted = set(_alt_names())
    return _fresh(cert, now) and cert.public_key() == key.public_key() and wanted <= set(names)


def _alt_names() -> list[x509.GeneralName]:
    return [
        *(x509.DNSName(name) for name in EDGE_DNS_NAMES),
        *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in EDGE_IP_ADDRESSES),
    ]


def _make_ca(now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Marketplace dev mesh CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_alt_names()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key
