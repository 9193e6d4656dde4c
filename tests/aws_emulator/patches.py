"""Install every gap filler into moto 5.2.5 (once per process); see each module for the real behaviour."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_installed: list[bool] = []


def emulated(new: Callable, original: Callable) -> Callable:
    """`new` for requests the emulator's server handles, moto's `original` for in-process moto."""
    from aws_emulator.context import in_emulator

    def chosen(*args: Any, **kwargs: Any) -> Any:
        return (new if in_emulator() else original)(*args, **kwargs)

    return chosen


def install() -> None:
    if _installed:
        return
    from moto.apigateway.models import RestAPI
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda.responses import LambdaResponse
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    from aws_emulator import (
        api_front,
        lambda_invoke,
        s3_tls,
        sagemaker_endpoints,
        sagemaker_pipelines,
        sagemaker_registry,
    )
    from aws_emulator.context import in_emulator

    s3_tls.install()
    # moto's dispatcher lists moto's own package folder on every request (a stat of each of its ~150
    # service folders) to tell a service name from a host name: the folders do not change while it runs.
    import moto.backends

    listed = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: listed
    LambdaResponse.invoke = lambda_invoke.qualifier_from_query(LambdaResponse.invoke)  # type: ignore[method-assign]
    LambdaFunction.invoke = emulated(lambda_invoke.patched_invoke, LambdaFunction.invoke)  # type: ignore[method-assign]
    RestAPI.create_deployment = emulated(  # type: ignore[method-assign]
        api_front.create_deployment_keeps_stage(RestAPI.create_deployment), RestAPI.create_deployment
    )
    SageMakerResponse.create_endpoint = emulated(  # type: ignore[method-assign]
        sagemaker_endpoints.create_endpoint, SageMakerResponse.create_endpoint
    )
    SageMakerResponse.update_endpoint = sagemaker_endpoints.update_endpoint  # type: ignore[attr-defined]
    SageMakerResponse.delete_model_package_group = sagemaker_registry.delete_model_package_group  # type: ignore[attr-defined]
    SageMakerResponse.delete_model_package = sagemaker_registry.delete_model_package  # type: ignore[attr-defined]
    update = SageMakerModelBackend.update_model_package
    SageMakerModelBackend.update_model_package = emulated(sagemaker_registry.update_keeps_metadata(update), update)  # type: ignore[method-assign]
    SageMakerModelBackend.describe_pipeline = sagemaker_registry.describe_pipeline_not_found(  # type: ignore[method-assign]
        SageMakerModelBackend.describe_pipeline
    )
    SageMakerResponse.list_pipeline_execution_steps = sagemaker_pipelines.list_pipeline_execution_steps  # type: ignore[attr-defined]
    start, describe = SageMakerModelBackend.start_pipeline_execution, SageMakerModelBackend.describe_pipeline_execution
    SageMakerModelBackend.start_pipeline_execution = emulated(sagemaker_pipelines.start_after(start), start)  # type: ignore[method-assign]
    SageMakerModelBackend.describe_pipeline_execution = sagemaker_pipelines.describe_after(describe)  # type: ignore[method-assign]
    # Request bodies of InvokeEndpoint are bytes (an image): keep them raw instead of decoding UTF-8.
    SageMakerRuntimeResponse.use_raw_body = property(lambda self: in_emulator())  # type: ignore[assignment]
    SageMakerRuntimeResponse.invoke_endpoint = emulated(  # type: ignore[method-assign]
        sagemaker_endpoints.invoke_endpoint, SageMakerRuntimeResponse.invoke_endpoint
    )
    _installed.append(True)
