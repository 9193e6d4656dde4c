"""An AWS emulator for tests: moto 5.2.5's server over TLS on loopback, with the APIs the project uses
and moto lacks filled in here (and only here):

- UpdateEndpoint (blue/green, alarm auto-rollback), endpoints provisioned by a real model server
  that reads model.tar.gz by content (the object's ETag when the fleet is provisioned, never a copy
  cached by URL), InvokeEndpoint routed to the current config's fleet: sagemaker_endpoints
- DeleteModelPackageGroup, DeleteModelPackage, UpdateModelPackage keeping metadata: sagemaker_registry
- pipeline executions that carry out their steps with the project's code, ListPipelineExecutionSteps:
  sagemaker_pipelines, pipeline_jobs, pipeline_expr; a processing job runs with its role's temporary
  credentials and the emulator's endpoint, as a SageMaker container does
- Lambda Invoke without Docker (the version's handler in a real process): lambda_invoke
- weighted aliases: each invocation (Invoke of the alias, or the public API) draws its version by the
  alias's AdditionalVersionWeights; the version that ran is in X-Amz-Executed-Version, the metrics'
  ExecutedVersion dimension and the log stream's name, and in a record of executions: lambda_routing
- what a function writes, in its CloudWatch log group, and its embedded-metric (EMF) lines as CloudWatch
  metrics (Lambda's own Errors counts only a handler that raised or timed out): lambda_logs, emf
- aws:SecureTransport in bucket policies: s3_tls
- the public API of REST stages, and CreateDeployment keeping the stage: api_front
- service metrics, visible only after CloudWatch's delay (AWS_EMULATOR_METRIC_DELAY_SECONDS), and
  alarm states judged once per period from complete periods, as CloudWatch does (EvaluationPeriods,
  DatapointsToAlarm, TreatMissingData): metrics
- every request logged (requests.jsonl), and a retried attempt of an invocation already answered with a
  success answered the same again, since the lost first answer is this loopback server's: request_log

Every AWS wait passes AWS_EMULATOR_TIME_SCALE times faster (context). What it still cannot check:
a client's own waits in AWS time (a bake, a poll interval) unless it is given the scaled ones, as
the rehearsal does, so a product that hard-codes minutes is not caught; delays that vary per
datapoint and arrive out of order (one fixed delay here); metric-math, composite and anomaly
alarms (never judged); percentiles through GetMetricData, and exact dimension matching in
GetMetricStatistics (moto's subset match); a delay on PutMetricData's own datapoints; cold
starts, concurrency limits and throttling of functions and serverless endpoints. KMS key policies are
not evaluated (identity policies and boundaries are): the registration key's own policy, which
grants kms:Sign to the pipeline role alone, is checked by the IAM analysis, not here. AWS managed IAM
policies (arn:aws:iam::aws:policy/...) are not loaded, as moto's default: the stacks attach none, and an
attachment of one fails here with NoSuchEntity where AWS would accept it.

`Emulator(workdir).start()` runs it; `emulator.env()` is the environment of a client process.
"""

from aws_emulator.server import Emulator

__all__ = ["Emulator"]
