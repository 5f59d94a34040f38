"""One served backend over a base and its adapters, choosing per request by the request's ``model`` name.

A server that serves adapters holds an :class:`AdapterRouter` as its backend. The request's model name
(``BASE``, ``BASE:ADAPTER`` or ``ADAPTER``) selects a view (:mod:`clearlm.tune.serve`) for the rest of
that request through a context variable, so every call the request makes (encode, stream, the response's
model name, an explanation's ``with backend.lock: explain(backend, ...)``) goes to its own view while other
requests use theirs. The context variable follows the request into worker threads started with
``anyio.to_thread`` or with a copied context (``contextvars.copy_context().run``).
"""

from __future__ import annotations

import contextvars

from clearlm.errors import ModelNotFoundError
from clearlm.tune.serve import AdapterSet

_selected: contextvars.ContextVar = contextvars.ContextVar("clearlm_adapter_view", default=None)


class AdapterRouter:
    """A backend that forwards every call to the view selected for the current request (the base when none).

    Over a torch base the views are PEFT adapters in this process (:class:`AdapterSet`). Over a vllm base
    started with the adapters as LoRA modules (``load_backend(..., lora_modules=...)``, see
    :mod:`clearlm.tune.lora_modules`) each view is the same vLLM server addressed by the adapter's name,
    which vLLM applies per request (multi-LoRA batching).

    ``folders``: the PEFT folders vLLM serves, by adapter name (its ``lora_modules``): an explanation of an
    adapter loads that folder into the server's torch twin (default: ``$CLEARLM_HOME/adapters/NAME``).

    Raises (``select``): ModelNotFoundError for a name that is neither the base nor a loaded adapter.
    """

    def __init__(self, base, adapters: list[str] | tuple[str, ...], folders: dict | None = None) -> None:
        self.kind = base.kind
        self.base_name = base.name
        self.folders = dict(folders or {})
        if base.kind == "vllm":
            self.views = {None: base}
            for name in adapters:
                self.views[name] = base.for_model(name, f"{base.name}:{name}")
            return
        self.adapters = AdapterSet(base)
        self.views = {None: self.adapters.view(None)}
        for name in adapters:
            self.views[name] = self.adapters.load(name)

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

    @property
    def current_adapter(self) -> str | None:
        """The name of the adapter the current request selected (None: the base)."""
        current = self.current
        return next(name for name, view in self.views.items() if view is current)

    @property
    def lock(self):
        """The selected view's lock (``serve.ActiveLock``): holding it makes that view's adapter active."""
        return self.current.lock

    def view(self, adapter: str | None):
        """The view of ``adapter`` (None: the base), without selecting it.

        Raises:
            ModelNotFoundError: the adapter is not served here.
        """
        if adapter not in self.views:
            served = ", ".join(n for n in self.views if n is not None) or "none"
            raise ModelNotFoundError(
                f"the adapter {adapter!r} is not served here (adapters served: {served}): "
                f"start the server with --adapter {adapter}"
            )
        return self.views[adapter]

    def __getattr__(self, attr):  # name, model, tokenizer, context_length, encode, decode, stream, ...
        return getattr(self.current, attr)
