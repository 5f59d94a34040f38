"""The HTTP server: OpenAI-compatible routes over the pipeline, with explanations and an audit log."""

from clearlm.server.app import create_app
from clearlm.server.state import ServerConfig, ServerState

__all__ = ["ServerConfig", "ServerState", "create_app"]
