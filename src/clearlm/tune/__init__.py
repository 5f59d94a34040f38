"""LoRA fine-tuning on a domain corpus (PEFT on the torch backend), measured before and after, governed
(PII policy, adapter cards), stored under ``$CLEARLM_HOME/adapters``, served and exported."""

from clearlm.tune.adapters import (
    AdapterExistsError,
    AdapterNotFoundError,
    list_adapters,
    read_card,
    remove_adapter,
)
from clearlm.tune.config import TuneConfig, load_config
from clearlm.tune.memory import InsufficientMemoryError
from clearlm.tune.run import TuneResult, tune

__all__ = [
    "AdapterExistsError",
    "AdapterNotFoundError",
    "InsufficientMemoryError",
    "TuneConfig",
    "TuneResult",
    "list_adapters",
    "load_config",
    "read_card",
    "remove_adapter",
    "tune",
]
