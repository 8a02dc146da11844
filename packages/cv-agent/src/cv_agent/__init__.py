"""cv-agent: the multi-turn code-as-tool agent loop of CodeVision, with model backends."""

from .agent import Agent, AgentConfig, call_notes, run_episodes
from .backends import (
    BackendError,
    Generation,
    ModelBackend,
    OpenAIBackend,
    OpenAIBackendConfig,
    TransformersBackend,
    TransformersBackendConfig,
    VLLMBackend,
    VLLMBackendConfig,
    make_backend,
)
from .images import smart_resize
from .templates import TEMPLATE_FAMILIES, chat_template_path, load_chat_template
from .trajectory import ToolCall, Trajectory, load_trajectories, save_trajectories
from .viewer import render_index_html, render_trajectory_html, write_html_report

__all__ = [
    "TEMPLATE_FAMILIES",
    "Agent",
    "AgentConfig",
    "BackendError",
    "Generation",
    "ModelBackend",
    "OpenAIBackend",
    "OpenAIBackendConfig",
    "ToolCall",
    "Trajectory",
    "TransformersBackend",
    "TransformersBackendConfig",
    "VLLMBackend",
    "VLLMBackendConfig",
    "call_notes",
    "chat_template_path",
    "load_chat_template",
    "load_trajectories",
    "make_backend",
    "render_index_html",
    "render_trajectory_html",
    "run_episodes",
    "save_trajectories",
    "smart_resize",
    "write_html_report",
]
__version__ = "0.1.0"
