"""Serve model.onnx over HTTP: the Open Inference Protocol v2 (REST) and a friendly /predict.

Only onnxruntime, numpy, msgspec, uvicorn and prometheus_client load here, never scikit-learn or
pandas: the image installs the project's runtime dependencies alone.

Routes (OIP v2: https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol):
  GET  /v2/health/live, /v2/health/ready, /v2
  GET  /v2/models/{name}[/versions/{version}], .../ready
  POST /v2/models/{name}[/versions/{version}]/infer   (JSON, or JSON then binary tensor data)
  POST /predict   {"records": [{"feature": value, ...}, ...]}
                  or {"columns": ["feature", ...], "data": [[value, ...], ...]}
  GET  /metrics   Prometheus text format
  GET  /openapi.json   this server's OpenAPI 3.1 document

Modules: `settings` (every limit, flags and environment), `model` (the onnxruntime session),
`protocol` (typed decoding straight to the model's feed, answers), `binary` (binary tensor data),
`errors` (a client's mistake, never a 5xx), `batching` (requests waiting at once share one model
call), `app` (the ASGI app), `http` (uvicorn's protocol with head and body deadlines and a header
limit), `metrics` (Prometheus, prediction log), `openapi`, `cli`.

Bad input is answered with 4xx and {"error": "<what is wrong>"}; it never reaches a 5xx.
"""

from .app import App
from .cli import main
from .errors import RequestError
from .metrics import PredictionLog
from .model import ModelLoadError, ServedModel
from .settings import Limits

__all__ = [
    "App",
    "Limits",
    "ModelLoadError",
    "PredictionLog",
    "RequestError",
    "ServedModel",
    "main",
]
