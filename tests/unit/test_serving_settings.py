"""Server settings: SageMaker's defaults, environment variables, and flags that override both."""

from __future__ import annotations

import pytest

from serving.settings import DEFAULT_MAX_REQUEST_BYTES, parse_settings

ENV = ("SM_MODEL_DIR", "SAGEMAKER_BIND_TO_PORT", "PORT", "HOST", "MAX_REQUEST_BYTES", "MODEL_VERSION", "LOG_REQUESTS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_sagemaker_defaults() -> None:
    s = parse_settings(["serve"])
    assert (s.model, s.host, s.port) == ("/opt/ml/model", "0.0.0.0", 8080)
    assert s.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES == 6 * 1024 * 1024
    assert s.model_version is None and s.log_requests
    assert parse_settings([]) == s  # `serve` is optional


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_MODEL_DIR", "/models/m1")
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("MAX_REQUEST_BYTES", "1000")
    monkeypatch.setenv("MODEL_VERSION", "7")
    monkeypatch.setenv("LOG_REQUESTS", "0")
    s = parse_settings(["serve"])
    assert (s.model, s.port, s.max_request_bytes, s.model_version, s.log_requests) == (
        "/models/m1",
        9000,
        1000,
        "7",
        False,
    )
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8181")  # SageMaker's own variable wins over PORT
    assert parse_settings([]).port == 8181


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8181")
    monkeypatch.setenv("MODEL_VERSION", "7")
    s = parse_settings(["serve", "--port", "0", "--host", "127.0.0.1", "--model", "m.tar.gz", "--model-version", "9"])
    assert (s.port, s.host, s.model, s.model_version) == (0, "127.0.0.1", "m.tar.gz", "9")


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["train"], {}),  # this image only serves
        (["--port", "-1"], {}),
        (["--max-request-bytes", "0"], {}),
        ([], {"PORT": "eighty"}),
        ([], {"MAX_REQUEST_BYTES": "6MB"}),
    ],
)
def test_bad_settings_stop_with_a_message(
    argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as stop:
        parse_settings(argv)
    assert stop.value.code != 0
    message = str(stop.value.code) + capsys.readouterr().err
    assert any(word in message for word in ("invalid choice", "must be", "not an integer"))
