"""Errors a user can cause. Each message says what went wrong and what to do about it.

The CLI prints ``str(error)`` and exits non-zero; a server maps ``status_code`` to an HTTP error body.
"""


class ClearlmError(Exception):
    """Base class of every error a user can cause (bad input, missing model, bad file)."""

    status_code = 400


class InvalidInputError(ClearlmError, ValueError):
    """A request's input is unusable: an empty prompt, a bad parameter, text longer than the context."""


class ModelNotFoundError(ClearlmError, LookupError):
    """A model name, path or hub id that cannot be found or is not installed."""

    status_code = 404


class IntegrityError(ClearlmError):
    """A model file whose size or sha256 differs from the pinned value."""

    status_code = 500


class BackendUnavailableError(ClearlmError):
    """A backend whose optional dependency is not installed, or that cannot do what was asked."""
