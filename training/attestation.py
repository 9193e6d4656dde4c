"""Registration attestations: the message a registered version's hashes are signed as, and its one check.

The pipeline's registration signs the message with a key only it may use (on AWS: the Evaluate job, with
the KMS key whose kms:Sign only the pipeline role has; locally: the state folder's key), and the signature
is registered beside the hashes. Promotion verifies it with the public half before anything moves. ECDSA
P-256 over SHA-256, DER-encoded, base64: what KMS returns for an ECC_NIST_P256 key, ≤ 96 characters.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

FIELDS = ("registry", "model_sha256", "smoke_manifest_sha256", "data_manifest_sha256", "git_sha")
KMS_ALGORITHM = "ECDSA_SHA_256"  # SigningAlgorithm of an ECC_NIST_P256 key in KMS
SIGNATURE_KEY = "attestation_signature"  # the registry's key for it (CustomerMetadataProperties, MLflow tag)
MAX_SIGNATURE_CHARS = 256  # a CustomerMetadataProperties value


class AttestationError(ValueError):
    """The attestation is missing, malformed, from another key, or not over these values (one line)."""


def message(
    registry: str, model_sha256: str, smoke_manifest_sha256: str, data_manifest_sha256: str, git_sha: str
) -> bytes:
    """Canonical JSON (sorted keys, no spaces) of what a registration records: the signed bytes."""
    values = (registry, model_sha256, smoke_manifest_sha256, data_manifest_sha256, git_sha)
    return json.dumps(dict(zip(FIELDS, values, strict=True)), sort_keys=True, separators=(",", ":")).encode()


def of_properties(registry: str, properties: dict[str, str]) -> bytes:
    """message() of a registration's recorded values, by the names the registry keeps them under."""
    return message(registry, *(str(properties.get(name) or "") for name in FIELDS[1:]))


def encode(signature_der: bytes) -> str:
    return base64.b64encode(signature_der).decode()


def sign_with_kms(kms: Any, key_id: str, body: bytes) -> str:
    """The base64 signature of `body` by a KMS ECC_NIST_P256 key (kms:Sign, as the caller's role)."""
    answer = kms.sign(KeyId=key_id, Message=body, MessageType="RAW", SigningAlgorithm=KMS_ALGORITHM)
    return encode(answer["Signature"])


def verify(public_key_der: bytes, body: bytes, signature: str) -> None:
    """Raise AttestationError unless `signature` (base64 DER) is the P-256 key's ECDSA/SHA-256 signature of body.

    public_key_der: DER SubjectPublicKeyInfo, what KMS GetPublicKey returns."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if not signature:
        raise AttestationError("it carries no registration signature")
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError("its registration signature is not base64") from None
    key = serialization.load_der_public_key(public_key_der)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise AttestationError("the registration key is not an ECC P-256 key")
    try:
        key.verify(der, body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AttestationError(
            "its registration signature does not verify with the pipeline's key over the registered hashes "
            "(forged, signed by another key, or the hashes were changed after registration)"
        ) from None
