"""The SageMaker model registry calls moto 5.2.5 lacks or gets wrong, as SageMaker behaves.

- DeleteModelPackageGroup (missing): deletes an empty group; a group that still holds model
  packages is refused with ConflictException (delete its versions first).
- DeleteModelPackage (missing): deletes one version, named by ARN (or by name for unversioned ones).
- UpdateModelPackage: SageMaker adds or replaces the CustomerMetadataProperties given and removes
  only CustomerMetadataPropertiesToRemove; moto replaces the whole map with what the request gave
  (nothing, for an approval), losing what the pipeline registered.
- DescribePipeline of a pipeline that does not exist: SageMaker answers ResourceNotFound; moto a
  ValidationError (code that creates a pipeline when it is missing would never see "missing").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import EmptyResult
from moto.sagemaker.exceptions import ConflictException, ResourceNotFound, ValidationError


def delete_model_package_group(self: Any) -> EmptyResult:
    backend = self.sagemaker_backend
    name = self._get_param("ModelPackageGroupName").rsplit("/", 1)[-1]
    if name not in backend.model_package_groups:
        raise ValidationError(f"Model Package Group {name} does not exist.")
    if any(p.model_package_group_name == name for p in backend.model_packages.values()):
        raise ConflictException(f"Model Package Group {name} has model packages: delete them first.")
    del backend.model_package_groups[name]
    return EmptyResult()


def delete_model_package(self: Any) -> EmptyResult:
    backend = self.sagemaker_backend
    name = self._get_param("ModelPackageName")
    key = backend.model_package_name_mapping.get(name, name)
    package = backend.model_packages.pop(key, None)
    if package is None:
        raise ValidationError(f"Model package {name} not found")
    for alias in [k for k, v in backend.model_package_name_mapping.items() if v == key]:
        del backend.model_package_name_mapping[alias]
    return EmptyResult()


def update_keeps_metadata(original: Callable) -> Callable:
    """Wraps SageMakerModelBackend.update_model_package: the given properties are merged into the stored ones."""

    def update_model_package(self: Any, model_package_arn: str, **kwargs: Any) -> str:
        key = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
        package = self.model_packages.get(key)
        if package is not None:
            given = kwargs.get("customer_metadata_properties") or {}
            kwargs["customer_metadata_properties"] = {**(package.customer_metadata_properties or {}), **given}
        return original(self, model_package_arn, **kwargs)

    return update_model_package


def describe_pipeline_not_found(original: Callable) -> Callable:
    def describe_pipeline(self: Any, pipeline_name: str) -> dict[str, Any]:
        if pipeline_name.rsplit("/", 1)[-1] not in self.pipelines:
            raise ResourceNotFound(f"Pipeline '{pipeline_name}' does not exist.")
        return original(self, pipeline_name)

    return describe_pipeline
