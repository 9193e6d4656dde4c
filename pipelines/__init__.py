"""SageMaker Pipeline definition and the local pipeline runner."""
