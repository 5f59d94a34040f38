"""clearlm: self-hosted language-model assistants that show their work."""

__version__ = "0.1.0"
