"""SageMaker Pipelines for the emulator: executions that carry out their steps, and their step list.

moto 5.2.5 marks every execution Succeeded at once and has no ListPipelineExecutionSteps. On
SageMaker, an execution is `Executing` while its steps run in dependency order, each step
`Executing` then `Succeeded` or `Failed` (with a FailureReason and Metadata naming its job, the
condition's Outcome, the registered model package, or the Fail step's ErrorMessage). A Fail step,
or a failed job, ends the execution `Failed`; otherwise it ends `Succeeded`.
ListPipelineExecutionSteps lists steps newest first unless SortOrder is Ascending.
Steps carried out: Training, Processing (pipeline_jobs.py), Condition, RegisterModel, Fail.
"""

from __future__ import annotations

import json
import threading
import traceback
import uuid
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.utils import get_pipeline_execution_from_arn

from aws_emulator import context
from aws_emulator.pipeline_expr import Resolver, evaluate, typed
from aws_emulator.pipeline_jobs import run_processing, run_training

SAGEMAKER = "sagemaker.amazonaws.com"
CONTAINER_ENV: dict[str, str] = {}  # what the training images would fetch themselves (set by the runner)


class StepFailed(Exception):
    pass


class ExecutionRun:
    def __init__(self, execution: Any, pipeline_name: str, account: str, region: str, pipeline_role: str) -> None:
        self.execution, self.account, self.region = execution, account, region
        definition = json.loads(execution.pipeline_definition_for_execution)
        self.definition = definition
        given = {p["Name"]: p["Value"] for p in execution.pipeline_parameters or []}
        params = {
            p["Name"]: typed(p["Type"], given.get(p["Name"], p.get("DefaultValue")))
            for p in definition.get("Parameters", [])
        }
        self.exec_id = execution.arn.rsplit("/", 1)[-1]
        variables = {
            "PipelineExecutionId": self.exec_id,
            "PipelineExecutionArn": execution.arn,
            "PipelineName": pipeline_name,
            "StartDateTime": execution.start_time.isoformat(),
            "CurrentDateTime": utcnow().isoformat(),
        }
        self.properties: dict[str, dict] = {}
        self.files: dict[str, dict] = {}
        self.resolve = Resolver(params, variables, self.properties, self.files)
        self.steps: list[dict] = []
        execution.emulated_steps = self.steps
        emu = context.emulator()
        self.root = emu.workdir / "pipelines" / self.exec_id
        # SageMaker runs the steps as the pipeline's role, and each job as the job's own role.
        self.sm = emu.client_as(pipeline_role, SAGEMAKER, "sagemaker")

    def job_s3(self, args: dict) -> Any:
        return context.emulator().client_as(args["RoleArn"], SAGEMAKER, "s3")

    def run(self) -> None:
        ex = self.execution
        ex.pipeline_execution_status = "Executing"
        try:
            for step in self.definition["Steps"]:
                self.run_step(step)
            ex.pipeline_execution_status = "Succeeded"
        except StepFailed as exc:
            ex.pipeline_execution_status, ex.pipeline_execution_failure_reason = "Failed", str(exc)
        except Exception as exc:
            traceback.print_exc()
            ex.pipeline_execution_status, ex.pipeline_execution_failure_reason = "Failed", f"InternalError: {exc}"
        ex.last_modified_time = utcnow()

    def run_step(self, step: dict) -> None:
        record = {
            "StepName": step["Name"],
            "StepDisplayName": step.get("DisplayName", step["Name"]),
            "StepStatus": "Executing",
            "StartTime": utcnow(),
            "AttemptCount": 1,
            "Metadata": {},
        }
        self.steps.append(record)
        kind = step["Type"]
        try:
            handler = getattr(self, f"step_{kind.lower()}", None)
            if handler is None:
                raise RuntimeError(f"step type {kind} is not carried out by the emulator")
            handler(step, record)
        except StepFailed as exc:
            if record["StepStatus"] == "Executing":  # a condition that succeeded keeps its status
                record.update(StepStatus="Failed", FailureReason=str(exc), EndTime=utcnow())
            raise
        except Exception as exc:
            record.update(StepStatus="Failed", FailureReason=str(exc)[:1000], EndTime=utcnow())
            raise StepFailed(f"Step failure: {step['Name']}: {str(exc)[:900]}") from exc
        if record["StepStatus"] == "Executing":
            record.update(StepStatus="Succeeded", EndTime=utcnow())

    def _job_name(self, step: dict) -> str:
        return f"pipelines-{self.exec_id}-{step['Name']}-{uuid.uuid4().hex[:10]}"[:63]

    def step_training(self, step: dict, record: dict) -> None:
        args, name = self.resolve(step["Arguments"]), self._job_name(step)
        try:
            arn = self.sm.create_training_job(TrainingJobName=name, **args)["TrainingJobArn"]
        except Exception:
            arn = f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{name}"
        record["Metadata"] = {"TrainingJob": {"Arn": arn}}
        artifacts = run_training(self.job_s3(args), name, args, self.root / step["Name"], CONTAINER_ENV)
        self.properties[step["Name"]] = {**args, "TrainingJobName": name, "TrainingJobArn": arn,
                                         "ModelArtifacts": {"S3ModelArtifacts": artifacts}}  # fmt: skip

    def step_processing(self, step: dict, record: dict) -> None:
        args, name = self.resolve(step["Arguments"]), self._job_name(step)
        arn = self.sm.create_processing_job(ProcessingJobName=name, **args)["ProcessingJobArn"]
        record["Metadata"] = {"ProcessingJob": {"Arn": arn}}
        role_env = context.emulator().role_env(args["RoleArn"], SAGEMAKER, name)  # the job runs as its role
        outputs = run_processing(self.job_s3(args), args, self.root / step["Name"], CONTAINER_ENV, role_env)
        config = args.get("ProcessingOutputConfig", {})
        by_name = {o["OutputName"]: o for o in config.get("Outputs", [])}
        self.properties[step["Name"]] = {**args, "ProcessingJobName": name, "ProcessingJobArn": arn,
                                         "ProcessingOutputConfig": {**config, "Outputs": by_name}}  # fmt: skip
        files = {}
        for spec in step.get("PropertyFiles", []):
            path = outputs[spec["OutputName"]] / spec["FilePath"]
            files[spec["PropertyFileName"]] = json.loads(path.read_text())
        self.files[step["Name"]] = files

    def step_condition(self, step: dict, record: dict) -> None:
        args = step["Arguments"]
        outcome = all(evaluate(self.resolve, c) for c in args.get("Conditions", []))
        record["Metadata"] = {"Condition": {"Outcome": "True" if outcome else "False"}}
        record.update(StepStatus="Succeeded", EndTime=utcnow())
        for branch in args.get("IfSteps" if outcome else "ElseSteps", []):
            self.run_step(branch)

    def step_registermodel(self, step: dict, record: dict) -> None:
        args = self.resolve(step["Arguments"])
        if args.get("ModelMetrics"):
            args["ModelMetrics"] = {k: v for k, v in args["ModelMetrics"].items() if v}
        if args.get("SkipModelValidation") == "None":
            args.pop("SkipModelValidation")
        arn = self.sm.create_model_package(**args)["ModelPackageArn"]
        record["Metadata"] = {"RegisterModel": {"Arn": arn}}
        self.properties[step["Name"]] = {"ModelPackageArn": arn}

    def step_fail(self, step: dict, record: dict) -> None:
        message = str(self.resolve(step["Arguments"].get("ErrorMessage", "")))
        record["Metadata"] = {"Fail": {"ErrorMessage": message}}
        raise StepFailed(message)


def start_after(original: Any) -> Any:
    """Wraps SageMakerModelBackend.start_pipeline_execution: the execution then runs in the background."""

    def start_pipeline_execution(self: Any, pipeline_name: str, *args: Any, **kwargs: Any) -> dict:
        result = original(self, pipeline_name, *args, **kwargs)
        execution = get_pipeline_execution_from_arn(self.pipelines, result["PipelineExecutionArn"])
        execution.pipeline_execution_status = "Executing"
        execution.emulated_steps = []
        name = pipeline_name.rsplit("/", 1)[-1]
        role = self.pipelines[name].role_arn
        run = ExecutionRun(execution, name, self.account_id, self.region_name, role)
        threading.Thread(target=run.run, name=f"pipeline-{run.exec_id}", daemon=True).start()
        return result

    return start_pipeline_execution


def describe_after(original: Any) -> Any:
    def describe_pipeline_execution(self: Any, arn: str) -> dict:
        result = original(self, arn)
        execution = get_pipeline_execution_from_arn(self.pipelines, arn)
        result["FailureReason"] = execution.pipeline_execution_failure_reason or ""
        result["LastModifiedTime"] = execution.last_modified_time
        return result

    return describe_pipeline_execution


def list_pipeline_execution_steps(self: Any) -> ActionResult:
    arn = self._get_param("PipelineExecutionArn")
    execution = get_pipeline_execution_from_arn(self.sagemaker_backend.pipelines, arn)
    steps = list(getattr(execution, "emulated_steps", []))
    if self._get_param("SortOrder") != "Ascending":
        steps.reverse()
    return ActionResult({"PipelineExecutionSteps": steps})
