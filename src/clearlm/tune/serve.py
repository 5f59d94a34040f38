"""Serving LoRA adapters: several over one base model in memory (PEFT multi-adapter), one view per adapter.

Each view is a torch backend named ``BASE:ADAPTER`` (the base itself: ``BASE``). All views share one PEFT
model and one re-entrant lock. A view's ``lock`` is that lock with the view's adapter made active on entry
(``set_adapter``; the base view: adapter layers disabled), so whatever holds a view's lock (a generation,
scoring, an explanation: ``with backend.lock: explain(backend, ...)``) runs on that view's weights, and
requests for different adapters are served one after another, each with its own adapter.
"""

from __future__ import annotations

import threading
from pathlib import Path

from clearlm.errors import InvalidInputError
from clearlm.models.backends.torch_backend import TorchBackend
from clearlm.tune.adapters import adapter_dir, card_at, read_card
from clearlm.tune.base import base_hash, check_trainable, peft_quietly


class AdapterMismatchError(InvalidInputError):
    """An adapter trained on another base model than the one it is loaded onto."""


def check_base(card: dict, base) -> None:
    """Raises AdapterMismatchError unless the adapter ``card`` was trained on ``base``'s weights."""
    want, have = card["base"]["weights_sha256"], base_hash(base)
    if want != have:
        raise AdapterMismatchError(
            f"adapter {card['name']!r} was trained on {card['base']['name']} (weights sha256 {want[:12]}...), "
            f"not on {base.name} ({have[:12]}...): load it over {card['base']['name']}"
        )


class AdapterSet:
    """Adapters over one torch base. ``view(None)`` is the base, ``view(name)`` the base with that adapter.

    Loading the first adapter wraps the base's module in a PEFT model in place: from then on, use the base
    only through ``view(None)``.
    """

    def __init__(self, base: TorchBackend) -> None:
        check_trainable(base)
        self.base = base
        self.peft = None
        # held across a whole generation or explanation: the active adapter is global state. Re-entrant, so
        # an explanation holding a view's lock may score through the same view.
        self.lock = threading.RLock()
        self.active: str | None | object = _UNKNOWN  # the adapter active now (None: disabled)
        self.depth = 0  # how many times the holder of ``lock`` holds it
        self._views: dict[str | None, _View] = {}

    @property
    def names(self) -> list[str]:
        return [n for n in self._views if n is not None]

    def load(self, name: str, path: str | Path | None = None) -> TorchBackend:
        """Load adapter ``name`` (from ``$CLEARLM_HOME/adapters/NAME``, or ``path``) and return its view.

        Raises:
            AdapterNotFoundError: no such adapter. AdapterMismatchError: trained on another base.
        """
        if name in self._views:
            return self._views[name]
        from peft import PeftModel

        folder = Path(path) if path else adapter_dir(name)
        card = read_card(name) if path is None else card_at(folder)
        check_base(card, self.base)
        with self.lock:
            if self.peft is None:
                with peft_quietly():
                    self.peft = PeftModel.from_pretrained(self.base.model, folder, adapter_name=name)
            else:
                self.peft.load_adapter(folder, adapter_name=name)
            self.peft.eval()
            self.active = _UNKNOWN
        self._views.setdefault(None, _View(self, None))
        return self._views.setdefault(name, _View(self, name))

    def view(self, name: str | None = None) -> TorchBackend:
        """The view serving ``name`` (None: the base); loads the adapter on first use."""
        if name is None:
            return self._views.setdefault(None, _View(self, None))
        return self.load(name)

    def activate(self, name: str | None) -> None:
        """Make ``name`` the active adapter (None: no adapter). Call with ``lock`` held."""
        if self.peft is None:
            return
        if name is None:
            self.peft.base_model.disable_adapter_layers()
        else:
            self.peft.base_model.enable_adapter_layers()
            self.peft.set_adapter(name)
        self.active = name


_UNKNOWN = object()


class ActiveLock:
    """A view's lock: the set's re-entrant lock, with the view's adapter (None: none) active while held.

    Entering it acquires ``AdapterSet.lock`` and activates the adapter; leaving it re-activates the adapter
    an enclosing holder in the same thread had active (the base view's lock taken inside an adapter's, as
    a comparison of the two does), then releases.
    """

    def __init__(self, adapters: AdapterSet, name: str | None) -> None:
        self.adapters, self.name = adapters, name
        self._outer: list = []

    def __enter__(self) -> ActiveLock:
        self.adapters.lock.acquire()
        self.adapters.depth += 1
        try:  # only a holder in this same thread (an enclosing block) needs its adapter back
            self._outer.append(self.adapters.active if self.adapters.depth > 1 else _UNKNOWN)
            if self.adapters.active != self.name:
                self.adapters.activate(self.name)
        except BaseException:
            self._outer.pop()
            self.adapters.depth -= 1
            self.adapters.lock.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            outer = self._outer.pop()
            if outer is not _UNKNOWN and outer != self.adapters.active:
                self.adapters.activate(outer)
        finally:
            self.adapters.depth -= 1
            self.adapters.lock.release()


class _View(TorchBackend):
    """A torch backend over the shared PEFT model that activates its adapter for each call."""

    def __init__(self, adapters: AdapterSet, name: str | None) -> None:
        base = adapters.base
        super().__init__(base.model, base.tokenizer, base.name if name is None else f"{base.name}:{name}")
        self.adapters, self.adapter = adapters, name
        self._active_lock = ActiveLock(adapters, name)

    @property
    def lock(self) -> ActiveLock:
        """The shared lock with this view's adapter active while it is held."""
        return self._active_lock

    @lock.setter
    def lock(self, value) -> None:  # TorchBackend.__init__ assigns its own
        pass

    @property
    def model(self):
        """The base's transformers model, its LoRA layers injected in place (PEFT's ``get_base_model()``):
        a plain ``PreTrainedModel`` (what explanations and scoring expect, not the ``PeftModel`` wrapper)
        that computes this view's weights while ``lock`` is held."""
        return self.adapters.base.model

    @model.setter
    def model(self, value) -> None:  # TorchBackend.__init__ assigns it
        pass

    # stream: TorchBackend's generation thread holds ``self.lock`` for the whole generation

    def response_logprobs(self, prompts, response, **options):
        with self.lock:
            return super().response_logprobs(prompts, response, **options)
