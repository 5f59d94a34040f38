"""One served backend over a base and its adapters, choosing per request by the request's ``model`` name.

A server that serves adapters holds an :class:`AdapterRouter` as its backend. The request's model name
(``BASE``, ``BASE:ADAPTER`` or ``ADAPTER``) selects a view (:mod:`clearlm.tune.serve`) for the rest of
that request through a context variable, so every call the request makes (encode, stream, the response's
model name) goes to its own view while other requests use theirs.
"""

from __future__ import annotations

import contextvars
import threading

from clearlm.errors import ModelNotFoundError
from clearlm.tune.serve import AdapterSet

_selected: contextvars.ContextVar = contextvars.ContextVar("clearlm_adapter_view", default=None)


class AdapterRouter:
    """A backend that forwards every call to the view selected for the current request (the base when none).

    Raises (``select``): ModelNotFoundError for a name that is neither the base nor a loaded adapter.
    """

    kind = "torch"

    def __init__(self, base, adapters: list[str] | tuple[str, ...]) -> None:
        self.adapters = AdapterSet(base)
        self.base_name = base.name
        self.views = {None: self.adapters.view(None)}
        for name in adapters:
            self.views[name] = self.adapters.load(name)
        self.lock = threading.Lock()

    @property
    def served(self) -> list[str]:
        """The model names this backend answers to: the base, then ``BASE:ADAPTER`` for each adapter."""
        return [self.base_name, *(f"{self.base_name}:{n}" for n in self.views if n is not None)]

    def select(self, model: str | None):
        """Route the current request (context) to ``model``'s view and return that view."""
        name = model
        if model and model.startswith(self.base_name + ":"):
            name = model[len(self.base_name) + 1 :]
        elif model == self.base_name:
            name = None
        if name not in self.views:
            raise ModelNotFoundError(
                f"the model {model!r} is not served here: this server serves {', '.join(self.served)}"
            )
        _selected.set(self.views[name])
        return self.views[name]

    @property
    def current(self):
        return _selected.get() or self.views[None]

    def __getattr__(self, attr):  # name, model, tokenizer, context_length, encode, decode, stream, ...
        return getattr(self.current, attr)
