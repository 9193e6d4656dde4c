"""An AWS emulator for tests: moto 5.2.5's server over TLS on loopback, with the APIs the project uses
and moto lacks filled in here (and only here):

- UpdateEndpoint (blue/green, alarm auto-rollback), endpoints provisioned by a real model server,
  InvokeEndpoint routed to the current config's model: sagemaker_endpoints
- DeleteModelPackageGroup, DeleteModelPackage, UpdateModelPackage keeping metadata: sagemaker_registry
- pipeline executions that carry out their steps with the project's code, ListPipelineExecutionSteps:
  sagemaker_pipelines, pipeline_jobs, pipeline_expr
- Lambda Invoke without Docker (the version's handler in a real process): lambda_invoke
- what a function writes, in its CloudWatch log group: lambda_logs
- aws:SecureTransport in bucket policies: s3_tls
- the public API of REST stages, and CreateDeployment keeping the stage: api_front
- service metrics and CloudWatch alarm states: metrics

`Emulator(workdir).start()` runs it; `emulator.env()` is the environment of a client process.
"""

from aws_emulator.server import Emulator

__all__ = ["Emulator"]
