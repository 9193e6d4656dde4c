"""Backend implementations behind the seam: local (MLflow, processes) and AWS (SageMaker, Lambda, API Gateway)."""
