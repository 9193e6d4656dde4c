"""Local stand-ins for the AWS services the local backend runs on: API Gateway (api_gateway.py, with the
stage's own answers and routing in api_stage.py), the Lambda runtime (lambda_runtime.py, its execution
environments in lambda_environment.py and lambda_runtime_client.py) and the SageMaker runtime
(sagemaker_runtime.py), on one embedded HTTP server (http_server.py); processes.py starts and stops them."""
