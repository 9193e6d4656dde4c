"""A throw-away certificate authority for the emulator: AWS endpoints are only reached over TLS.

Real AWS serves every API (and every API Gateway stage) over HTTPS with a certificate for the
service's host name; the emulator does the same on loopback, with a CA made for one run. Clients
trust it through the usual variables: SSL_CERT_FILE (OpenSSL, Go) names a bundle that also holds the
system's CAs, so package downloads keep working; AWS_CA_BUNDLE (boto3, which reaches AWS only) names the CA
alone, since botocore reads its bundle again for every connection it opens.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # the server's certificate chain (leaf + CA)
    key: Path
    bundle: Path  # the CA plus the system's CAs: what clients trust
    ca: Path  # the CA alone: what AWS clients trust


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_tls(folder: Path, host_names: list[str]) -> TlsFiles:
    """A CA and a server certificate for 127.0.0.1, localhost and `host_names` (wildcards allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("aws-emulator test CA"))
        .issuer_name(_name("aws-emulator test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    names += [x509.DNSName(h) for h in host_names]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    files = TlsFiles(folder / "server.pem", folder / "server.key", folder / "ca-bundle.pem", folder / "ca.pem")
    files.ca.write_bytes(ca_pem)
    files.cert.write_bytes(leaf.public_bytes(pem) + ca_pem)
    files.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    system = next((Path(p).read_bytes() for p in SYSTEM_BUNDLES if Path(p).is_file()), b"")
    files.bundle.write_bytes(ca_pem + b"\n" + system)
    return files
