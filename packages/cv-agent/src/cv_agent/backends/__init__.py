"""Model backends behind one interface: OpenAI-compatible HTTP, transformers, vLLM offline."""

from .base import BackendError, Generation, ModelBackend
from .factory import make_backend
from .hf import TransformersBackend, TransformersBackendConfig
from .openai_compat import OpenAIBackend, OpenAIBackendConfig
from .vllm_offline import VLLMBackend, VLLMBackendConfig

__all__ = [
    "BackendError",
    "Generation",
    "ModelBackend",
    "OpenAIBackend",
    "OpenAIBackendConfig",
    "TransformersBackend",
    "TransformersBackendConfig",
    "VLLMBackend",
    "VLLMBackendConfig",
    "make_backend",
]
