"""Errors a user can cause. Each message says what went wrong and what to do about it.

The CLI prints ``str(error)`` and exits non-zero; the server answers ``status_code`` with an OpenAI-style
error body carrying ``error_type`` and ``code``.
"""


class ClearlmError(Exception):
    """Base class of every error a user can cause (bad input, missing model, bad file)."""

    status_code = 400
    error_type = "invalid_request_error"
    code: str | None = None


class InvalidInputError(ClearlmError, ValueError):
    """A request's input is unusable: an empty prompt, a bad parameter, text longer than the context."""


class ContextLengthError(InvalidInputError):
    """The prompt plus the tokens asked for do not fit in the model's context."""

    code = "context_length_exceeded"


class PolicyViolationError(ClearlmError):
    """A request that the deployment's policy blocks (when the policy answers blocks with an error)."""

    code = "content_policy_violation"


class ModelNotFoundError(ClearlmError, LookupError):
    """A model name, path or hub id that cannot be found or is not installed."""

    status_code = 404
    code = "model_not_found"


class IntegrityError(ClearlmError):
    """A model file whose size or sha256 differs from the pinned value."""

    status_code = 500
    error_type = "server_error"


class BackendUnavailableError(ClearlmError):
    """A backend whose optional dependency is not installed, or that cannot do what was asked."""
