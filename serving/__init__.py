"""Model server: SageMaker hosting container contract over ONNX Runtime."""
