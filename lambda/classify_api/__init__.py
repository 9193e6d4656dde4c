"""API Gateway -> Lambda handler that classifies a cat/dog photo through a SageMaker endpoint."""
