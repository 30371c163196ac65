"""The machinery of projects made from cookiecutter-mlops-actions: the ONNX server, the PR report
and its intervals, drift, releases and delivery, the data contract and the ONNX export.

A generated project holds its own ML code (data, features, models, stages) and calls these.
"""

__version__ = "0.4.0"
