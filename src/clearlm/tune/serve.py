"""Serving LoRA adapters: several over one base model in memory (PEFT multi-adapter), one view per adapter.

Each view is a torch backend named ``BASE:ADAPTER`` (the base itself: ``BASE``). All views share one PEFT
model and one lock; a view holds that lock for the whole of a generation or scoring and activates its
adapter (``set_adapter``) or none (adapter layers disabled) first, so requests for different adapters are
served one after another, each with its own adapter.
"""

from __future__ import annotations

import threading
from pathlib import Path

from clearlm.errors import InvalidInputError
from clearlm.models.backends.torch_backend import TorchBackend
from clearlm.tune.adapters import adapter_dir, read_card
from clearlm.tune.base import base_hash, check_trainable


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
        self.lock = threading.Lock()  # held across a whole generation: the active adapter is global state
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
        card = read_card(name) if path is None else _card_at(folder)
        check_base(card, self.base)
        with self.lock:
            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.base.model, folder, adapter_name=name)
            else:
                self.peft.load_adapter(folder, adapter_name=name)
            self.peft.eval()
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


def _card_at(folder: Path) -> dict:
    import json

    try:
        return json.loads((folder / "card.json").read_text(encoding="utf-8"))
    except OSError:
        raise InvalidInputError(f"{folder} is not a clearlm adapter folder (no card.json)") from None


class _View(TorchBackend):
    """A torch backend over the shared PEFT model that activates its adapter for each call."""

    def __init__(self, adapters: AdapterSet, name: str | None) -> None:
        base = adapters.base
        super().__init__(base.model, base.tokenizer, base.name if name is None else f"{base.name}:{name}")
        self.adapters, self.adapter = adapters, name

    @property
    def model(self):
        return self.adapters.peft if self.adapters.peft is not None else self.adapters.base.model

    @model.setter
    def model(self, value) -> None:  # TorchBackend.__init__ assigns it
        pass

    def stream(self, prompt, params):
        with self.adapters.lock:
            self.adapters.activate(self.adapter)
            yield from super().stream(prompt, params)

    def response_logprobs(self, prompts, response, **options):
        with self.adapters.lock:
            self.adapters.activate(self.adapter)
            return super().response_logprobs(prompts, response, **options)
