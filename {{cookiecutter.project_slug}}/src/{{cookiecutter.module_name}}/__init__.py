"""{{ cookiecutter.project_name }}: a model trained by a DVC pipeline and served as ONNX."""
