"""Teardown as docs/deploy-aws.md describes it: what releases created, then emptied buckets, then Terraform."""

from __future__ import annotations

from typing import Any

from rehearsal import checks


class TeardownSteps:
    """Mixed into the flow: needs emu and settings."""

    emu: Any
    settings: dict

    def empty_for_teardown(self) -> str:
        s3, ddb = self.emu.client("s3"), self.emu.client("dynamodb")
        names = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] != self.settings["state_bucket"]]
        for name in names:
            s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={})
        for name in names:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
                items = page.get("Versions", []) + page.get("DeleteMarkers", [])
                for start in range(0, len(items), 1000):
                    batch = [{"Key": i["Key"], "VersionId": i["VersionId"]} for i in items[start : start + 1000]]
                    s3.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})
        for table in ddb.list_tables()["TableNames"]:
            ddb.update_table(TableName=table, DeletionProtectionEnabled=False)
        return f"emptied {len(names)} buckets; deletion protection off"

    def release_resources(self) -> str:
        """Delete what releases and the pipeline created (endpoints, models, images, packages), as the guide says."""
        sm, done = self.emu.client("sagemaker"), []
        for e in sm.list_endpoints()["Endpoints"]:
            sm.delete_endpoint(EndpointName=e["EndpointName"])
            done.append(e["EndpointName"])
        for c in sm.list_endpoint_configs()["EndpointConfigs"]:
            sm.delete_endpoint_config(EndpointConfigName=c["EndpointConfigName"])
        for m in sm.list_models()["Models"]:
            sm.delete_model(ModelName=m["ModelName"])
        for p in sm.list_pipelines()["PipelineSummaries"]:
            sm.delete_pipeline(PipelineName=p["PipelineName"])
        ecr = self.emu.client("ecr")
        for repo in ecr.describe_repositories()["repositories"]:
            images = ecr.list_images(repositoryName=repo["repositoryName"])["imageIds"]
            if images:
                ecr.batch_delete_image(repositoryName=repo["repositoryName"], imageIds=images)
        packages = 0
        for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]:
            listed = sm.list_model_packages(ModelPackageGroupName=g["ModelPackageGroupName"])
            for package in listed["ModelPackageSummaryList"]:
                sm.delete_model_package(ModelPackageName=package["ModelPackageArn"])
                packages += 1
        return f"deleted endpoints {done}, their configs and models, the pipeline, images, {packages} model packages"

    def nothing_left(self) -> str:
        left = checks.leftovers(self.emu, {self.settings["state_bucket"]})
        if left:
            raise AssertionError(f"left behind: {left}")
        return "nothing left but the state bucket"
