"""The local registration key: a P-256 key pair in the state folder, made on first use (private half 0600).

LocalRegistry.register (the local pipeline's registration) signs with it; promotion verifies with its
public half (training/attestation.py), as the aws backend does with the pipeline's KMS key.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlops import config
from training.attestation import encode

KEY_FILE = "registration-signing-key.pem"


def key_path() -> Path:
    return config.state_dir() / KEY_FILE


def _create(path: Path) -> None:
    """Write a new key beside `path`, then link it into place: of two first uses, one key wins whole."""
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def private_key() -> ec.EllipticCurvePrivateKey:
    path = key_path()
    if not path.is_file():
        _create(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key


def public_key_der() -> bytes:
    """The public half as DER SubjectPublicKeyInfo (what KMS GetPublicKey returns)."""
    return (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def sign(body: bytes) -> str:
    return encode(private_key().sign(body, ec.ECDSA(hashes.SHA256())))
