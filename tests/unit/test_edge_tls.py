"""The dev mesh's CA and edge certificate: made once, reused while valid, remade near expiry."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509

from services.devmesh.tls import LEAF_LIFETIME, ensure_edge_tls

NOW = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC)


def test_the_edge_certificate_is_issued_by_the_ca_for_the_local_names(tmp_path: Path) -> None:
    files = ensure_edge_tls(tmp_path, now=NOW)
    ca = x509.load_pem_x509_certificate(files.ca_path.read_bytes())
    leaf = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
    leaf.verify_directly_issued_by(ca)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert files.key_path.stat().st_mode & 0o077 == 0  # the private key is the owner's alone


def test_valid_files_are_reused_on_restart(tmp_path: Path) -> None:
    first = ensure_edge_tls(tmp_path, now=NOW)
    before = (first.ca_path.read_bytes(), first.cert_path.read_bytes())
    again = ensure_edge_tls(tmp_path, now=NOW + datetime.timedelta(days=30))
    assert (again.ca_path.read_bytes(), again.cert_path.read_bytes()) == before


def test_a_certificate_near_its_end_is_remade_under_the_same_ca(tmp_path: Path) -> None:
    first = ensure_edge_tls(tmp_path, now=NOW)
    ca_before, leaf_before = first.ca_path.read_bytes(), first.cert_path.read_bytes()
    later = ensure_edge_tls(tmp_path, now=NOW + LEAF_LIFETIME - datetime.timedelta(days=1))
    assert later.ca_path.read_bytes() == ca_before  # clients keep trusting the same CA
    assert later.cert_path.read_bytes() != leaf_before


def test_damaged_files_are_replaced(tmp_path: Path) -> None:
    first = ensure_edge_tls(tmp_path, now=NOW)
    first.cert_path.write_text("not a certificate")
    again = ensure_edge_tls(tmp_path, now=NOW)
    x509.load_pem_x509_certificate(again.cert_path.read_bytes())
