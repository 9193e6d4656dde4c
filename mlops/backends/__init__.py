"""The backend seam (base.py) and its implementations, chosen by factory.py: local/ (MLflow, processes on the
stand-ins of mlops/standins/) and aws/ (SageMaker, Lambda, API Gateway, DynamoDB)."""
