"""Registered hashes are the pipeline's or nothing is released (the attack: a principal that may create a model
package, or update one's metadata, registers hashes the pipeline never signed).

The registration signs its hashes with the KMS key only the pipeline role may use (training/attestation.py);
promotion verifies the signature with that key's public half before anything moves.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from aws_support import GROUP, Stack, approved_stack, attested, create_package, tiny_artifact
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import mlops.release as release_mod
from mlops.release import PromotionRefused, promote
from mlops.smoke import SmokeConfig, SmokeResult
from training import attestation

stack = pytest.fixture(name="stack")(approved_stack)
HASHES = {"model_sha256": "a" * 64, "smoke_manifest_sha256": "b" * 64, "data_manifest_sha256": "c" * 64}


def _smoke_passes(monkeypatch) -> None:
    def fake(url: str, cfg: SmokeConfig, photos: object = None) -> SmokeResult:
        return SmokeResult(True, [], 10, 10, 80.0, 120.0, {"health": 200})

    monkeypatch.setattr(release_mod, "run_smoke", fake)
    monkeypatch.setattr(release_mod, "smoke_photos", lambda cfg, *_: [(Path("cat.1.jpg"), "cat")])


def _der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_a_signature_verifies_only_over_the_values_it_was_made_for() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = attestation.message("group", "a" * 64, "b" * 64, "c" * 64, "sha")
    signature = attestation.encode(key.sign(body, ec.ECDSA(hashes.SHA256())))
    assert len(signature) <= 96
    attestation.verify(_der(key), body, signature)
    assert attestation.of_properties("group", {**HASHES, "git_sha": "sha", "other": "x"}) == body
    for changed in (
        attestation.message("other-group", "a" * 64, "b" * 64, "c" * 64, "sha"),
        attestation.message("group", "d" * 64, "b" * 64, "c" * 64, "sha"),
        attestation.message("group", "a" * 64, "b" * 64, "c" * 64, "other"),
    ):
        with pytest.raises(attestation.AttestationError, match="does not verify"):
            attestation.verify(_der(key), changed, signature)
    with pytest.raises(attestation.AttestationError, match="does not verify"):
        attestation.verify(_der(ec.generate_private_key(ec.SECP256R1())), body, signature)
    with pytest.raises(attestation.AttestationError, match="no registration signature"):
        attestation.verify(_der(key), body, "")
    with pytest.raises(attestation.AttestationError, match="not base64"):
        attestation.verify(_der(key), body, "not base64!")
    with pytest.raises(attestation.AttestationError, match="not an ECC P-256 key"):
        other = ec.generate_private_key(ec.SECP384R1())
        attestation.verify(_der(other), body, attestation.encode(other.sign(body, ec.ECDSA(hashes.SHA256()))))


def _register(stack: Stack, props: dict[str, str], tag: str) -> str:
    """A version registered and approved by hand, its artifact `tag`'s model: what an insider can do."""
    return create_package(stack.client("sagemaker"), stack.client("s3"), tag, "Approved", props)


def _forgeries(stack: Stack) -> dict[str, dict[str, str]]:
    kms = stack.client("kms")
    _, forged_sha = tiny_artifact("forged")
    genuine = stack.backend.registry.get("2")
    own = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
    props = {"git_sha": "sha9", "mlflow_run_id": "run9", "model_sha256": forged_sha}
    local = ec.generate_private_key(ec.SECP256R1())
    body = attestation.of_properties(GROUP, props)
    return {
        "no signature": props,
        # version 2's genuine signature beside the forged model's hash
        "another version's signature": {**props, attestation.SIGNATURE_KEY: genuine.attestation},
        "signed by a key of the attacker's own in KMS": attested(kms, props, alias="alias/attacker"),
        "signed by the attacker's own key pair": {
            **props,
            attestation.SIGNATURE_KEY: attestation.encode(local.sign(body, ec.ECDSA(hashes.SHA256()))),
        },
        "random bytes": {**props, attestation.SIGNATURE_KEY: base64.b64encode(b"\x30" * 70).decode()},
        "another key id named in its metadata": {
            **attested(kms, props, alias="alias/attacker"),
            "signing_key": own,
        },
    }


def test_aws_a_version_the_pipeline_did_not_sign_is_refused_and_the_live_release_keeps_serving(
    stack: Stack, monkeypatch
) -> None:
    _smoke_passes(monkeypatch)
    backend = stack.backend
    promote(backend, "1", "alice", SmokeConfig(), log=lambda _: None)
    before = backend.served()
    for name, props in _forgeries(stack).items():
        version = _register(stack, props, f"forged-{len(name)}")
        with pytest.raises(PromotionRefused) as refused:
            promote(backend, version, "mallory", SmokeConfig(), log=lambda _: None)
        message = str(refused.value)
        assert "\n" not in message, name
        assert f"version {version} is not attested by the pipeline's registration" in message, name
        assert backend.served() == before, name
        assert [r.model_version for r in backend.list_releases()] == ["1"], name
        with pytest.raises(PromotionRefused, match="not attested"):
            promote(backend, None, "deploy-on-merge", SmokeConfig(), log=lambda _: None)  # the newest approved


def test_aws_hashes_changed_after_registration_are_refused(stack: Stack, monkeypatch) -> None:
    """UpdateModelPackage may rewrite CustomerMetadataProperties: the signature no longer covers them."""
    _smoke_passes(monkeypatch)
    sm, backend = stack.client("sagemaker"), stack.backend
    _, forged_sha = tiny_artifact("forged")
    arn = backend.registry._arn("2")
    props = sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    forged = {**props, "model_sha256": forged_sha}
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties=forged, ModelApprovalStatus="Approved")
    assert backend.get_version("2").model_sha256 == forged_sha
    with pytest.raises(PromotionRefused, match=r"version 2 is not attested .* does not verify"):
        promote(backend, "2", "mallory", SmokeConfig(), log=lambda _: None)
    assert backend.list_releases() == []


def test_aws_the_key_is_the_configured_one_and_its_absence_refuses(stack: Stack, monkeypatch) -> None:
    _smoke_passes(monkeypatch)
    backend = stack.backend
    backend.registry.signing_key = "alias/catdog-staging-missing"
    with pytest.raises(PromotionRefused, match=r"version 2: its registration cannot be verified: .*NotFound"):
        promote(backend, "2", "alice", SmokeConfig(), log=lambda _: None)
    assert backend.list_releases() == []


def test_evaluate_signs_what_the_register_step_records_with_the_configured_key(monkeypatch) -> None:
    """training/evaluate.py in the pipeline's Evaluate job: the group and commit it registers with, the hashes it
    wrote; no key configured (a local run), no signature; a key it may not use fails in one line."""
    from moto import mock_aws

    from training.evaluate import attest

    report = {"model": {"sha256": "a" * 64}, "smoke_set": {"manifest_sha256": "b" * 64}, "data": {}}
    monkeypatch.delenv("REGISTRATION_SIGNING_KEY", raising=False)
    assert attest(report) == {}
    credentials = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "eu-west-1"}
    for name, value in {**credentials, "MODEL_PACKAGE_GROUP": GROUP, "GIT_SHA": "sha1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        import boto3

        kms = boto3.client("kms", region_name="eu-west-1")
        key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
        monkeypatch.setenv("REGISTRATION_SIGNING_KEY", key)
        signed = attest(report)
        props = {"model_sha256": "a" * 64, "smoke_manifest_sha256": "b" * 64, "git_sha": "sha1"}
        public = kms.get_public_key(KeyId=key)["PublicKey"]
        attestation.verify(public, attestation.of_properties(GROUP, props), signed["signature"])
        monkeypatch.setenv("REGISTRATION_SIGNING_KEY", "alias/none")
        with pytest.raises(attestation.AttestationError, match=r"signing the registration with alias/none: .*NotFound"):
            attest(report)


def test_the_local_key_is_made_once_private_to_its_owner_and_verifies_its_signatures(monkeypatch, tmp_path) -> None:
    from mlops.backends.local import signing

    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    body = attestation.message("catdog-mobilenetv2", "a" * 64, "", "", "sha")
    signature = signing.sign(body)
    assert (signing.key_path().stat().st_mode & 0o777) == 0o600
    public = signing.public_key_der()
    assert signing.public_key_der() == public  # the same key on every use
    attestation.verify(public, body, signature)
    assert [p.name for p in tmp_path.iterdir()] == [signing.KEY_FILE]  # no temporary file left behind
