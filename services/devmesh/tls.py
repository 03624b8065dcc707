"""The dev mesh's own certificate authority and its certificates, made once and reused.

One CA (`.mesh/tls/ca.pem`) signs the edge's HTTPS certificate, a certificate per service
identity (server and client: a SPIFFE-style URI SAN naming the service, DNS and IP SANs
for the names it is dialled by), the edge's upstream client certificate and the
operator's client certificate. The tests issue theirs the same way from a CA of their own.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.common.mesh_identity import (
    EDGE_IDENTITY,
    MESH_SERVICES,
    OPERATOR_IDENTITY,
    TRUST_DOMAIN,
    service_identity,
)

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
    _ensure_leaf(ca, _edge_leaf(), files.cert_path, files.key_path, now)
    return files


@dataclass(frozen=True)
class CertificateFiles:
    """A certificate and its private key, PEM files."""

    cert_path: Path
    key_path: Path


@dataclass(frozen=True)
class MeshTls:
    """The mesh's mTLS material: the CA and every identity's certificate."""

    ca_path: Path
    # Server and client certificate of each service, by service name.
    services: Mapping[str, CertificateFiles]
    # The edge's client certificate towards the services (not an internal caller).
    edge_client: CertificateFiles
    # The operator's client certificate, for grpcurl.
    operator: CertificateFiles


def ensure_mesh_tls(
    folder: Path,
    *,
    services: Sequence[str] = MESH_SERVICES,
    trust_domain: str = TRUST_DOMAIN,
    now: datetime.datetime | None = None,
) -> MeshTls:
    """The CA and every mesh identity's certificate in `folder`, made unless valid ones exist.

    Files: `<service>.pem` and `<service>-key.pem` per service, `edge-client.pem`,
    `operator.pem` (each with its `-key.pem`), beside the edge's (see ensure_edge_tls).

    Args:
        folder: Where the files live (`.mesh/tls/`).
        services: The service identities to issue certificates for.
        trust_domain: The SPIFFE trust domain of the identities.
        now: The current time (tests move it).

    Returns:
        The paths services, the edge and operators use.
    """
    now = now or datetime.datetime.now(datetime.UTC)
    edge = ensure_edge_tls(folder, now=now)
    ca = _load_valid_ca(edge.ca_path, folder / "ca-key.pem", now)
    if ca is None:  # pragma: no cover - ensure_edge_tls just wrote a valid one
        raise RuntimeError("the mesh CA could not be read back")
    issued: dict[str, CertificateFiles] = {}
    for name in services:
        files = CertificateFiles(folder / f"{name}.pem", folder / f"{name}-key.pem")
        _ensure_leaf(ca, _service_leaf(name, trust_domain), files.cert_path, files.key_path, now)
        issued[name] = files
    clients = {
        "edge-client": f"spiffe://{trust_domain}/{EDGE_IDENTITY}",
        "operator": f"spiffe://{trust_domain}/{OPERATOR_IDENTITY}",
    }
    made: dict[str, CertificateFiles] = {}
    for file_name, uri in clients.items():
        files = CertificateFiles(folder / f"{file_name}.pem", folder / f"{file_name}-key.pem")
        _ensure_leaf(ca, _client_leaf(file_name, uri), files.cert_path, files.key_path, now)
        made[file_name] = files
    return MeshTls(edge.ca_path, issued, made["edge-client"], made["operator"])


@dataclass(frozen=True)
class _LeafSpec:
    """What one leaf certificate says: its name, alternative names and uses."""

    common_name: str
    alt_names: tuple[x509.GeneralName, ...]
    usages: tuple[x509.ObjectIdentifier, ...]


def _edge_leaf() -> _LeafSpec:
    return _LeafSpec("localhost", tuple(_alt_names()), (ExtendedKeyUsageOID.SERVER_AUTH,))


def _service_leaf(name: str, trust_domain: str) -> _LeafSpec:
    # Dialled by its service name in the cluster (and checked against it when a balanced
    # target is a list of addresses), by localhost or 127.0.0.1 on one machine.
    return _LeafSpec(
        name,
        (
            x509.UniformResourceIdentifier(service_identity(name, trust_domain)),
            x509.DNSName(name),
            *_alt_names(),
        ),
        (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    )


def _client_leaf(name: str, uri: str) -> _LeafSpec:
    return _LeafSpec(
        name, (x509.UniformResourceIdentifier(uri),), (ExtendedKeyUsageOID.CLIENT_AUTH,)
    )


def _ensure_leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    spec: _LeafSpec,
    cert_path: Path,
    key_path: Path,
    now: datetime.datetime,
) -> None:
    if _leaf_is_valid(cert_path, key_path, ca[0], now, spec.alt_names):
        return
    cert, key = _make_leaf(ca[0], ca[1], spec, now)
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


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
    cert_path: Path,
    key_path: Path,
    ca: x509.Certificate,
    now: datetime.datetime,
    wanted: Sequence[x509.GeneralName],
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return _fresh(cert, now) and cert.public_key() == key.public_key() and set(wanted) <= set(names)


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
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    spec: _LeafSpec,
    now: datetime.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(spec.alt_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage(spec.usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key
