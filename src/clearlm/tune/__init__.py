"""LoRA fine-tuning on a domain corpus (PEFT on the torch backend), measured before and after, governed
(PII policy, adapter cards), stored under ``$CLEARLM_HOME/adapters``, served and exported."""

from clearlm.tune.adapters import (
    AdapterExistsError,
    AdapterNotFoundError,
    list_adapters,
    read_card,
    remove_adapter,
)
from clearlm.tune.answers import QuestionSet
from clearlm.tune.config import TuneConfig, load_config
from clearlm.tune.memory import InsufficientMemoryError
from clearlm.tune.questions import Question, load_questions
from clearlm.tune.run import TuneResult, tune

__all__ = [
    "AdapterExistsError",
    "AdapterNotFoundError",
    "InsufficientMemoryError",
    "Question",
    "QuestionSet",
    "TuneConfig",
    "TuneResult",
    "list_adapters",
    "load_config",
    "load_questions",
    "read_card",
    "remove_adapter",
    "tune",
]
