"""A tuning run's settings: LoRA shape, optimiser, sequence length, steps, seed; defaults sized for 2 CPU cores.

A config file (YAML) may set any field; unknown keys are refused with the list of known ones::

    rank: 8
    alpha: 16
    steps: 200
    seq_len: 256
    learning_rate: 2.0e-4
    # the four-way question answering after training (clearlm.tune.answers), not hyperparameters:
    questions: questions.jsonl      # a path relative to this file
    knowledge_base: debian-reference
    passages: 3                     # retrieved per question
    answer_tokens: 64               # at most, per answer
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import yaml

from clearlm.errors import InvalidInputError

# The attention and MLP projections of Llama/Qwen/Gemma-style decoders (the names PEFT matches by suffix).
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True, slots=True)
class TuneConfig:
    """Hyperparameters of one LoRA run (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models").

    Fields: rank (r) and alpha (the update is scaled by alpha / rank); dropout on the LoRA input;
    target_modules (module-name suffixes that get adapters); learning_rate (AdamW, linear warm-up over
    warmup_steps then linear decay to 0); weight_decay; steps (optimiser steps); batch_size (sequences per
    micro-batch) and grad_accum (micro-batches per step); seq_len (tokens per training sequence);
    seed (data order, LoRA initialisation and dropout); checkpoint_every (steps; 0 = never);
    held_out (fraction of document chunks kept out of training for the domain perplexity, when no
    separate evaluation data is given); eval_tokens (at most this many tokens per perplexity figure);
    max_grad_norm (gradient clipping, 0 = off); gradient_checkpointing (trade compute for activation memory).
    """

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 5
    steps: int = 60
    batch_size: int = 1
    grad_accum: int = 4
    seq_len: int = 256
    seed: int = 0
    checkpoint_every: int = 20
    held_out: float = 0.1
    eval_tokens: int = 4096
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.rank >= 1, "rank must be >= 1"),
            (self.alpha > 0, "alpha must be > 0"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (bool(self.target_modules), "target_modules must name at least one module"),
            (0 < self.learning_rate < 1, "learning_rate must be in (0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.grad_accum >= 1, "grad_accum must be >= 1"),
            (self.seq_len >= 16, "seq_len must be >= 16 tokens"),
            (self.checkpoint_every >= 0, "checkpoint_every must be >= 0 (0 = no checkpoints)"),
            (0 <= self.held_out < 1, "held_out must be in [0, 1)"),
            (self.eval_tokens >= 16, "eval_tokens must be >= 16"),
            (self.max_grad_norm >= 0, "max_grad_norm must be >= 0 (0 = no clipping)"),
        ]
        bad = [msg for ok, msg in checks if not ok]
        if bad:
            raise InvalidInputError("bad tuning settings: " + "; ".join(bad))
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d

    def with_overrides(self, **values) -> TuneConfig:
        """A copy with the given fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def field_names() -> list[str]:
    return [f.name for f in fields(TuneConfig)]


def config_from_dict(data: dict, source: str = "<config>") -> TuneConfig:
    """A :class:`TuneConfig` from a mapping. Raises InvalidInputError naming unknown keys or bad values."""
    unknown = sorted(set(data) - set(field_names()))
    if unknown:
        known = [*field_names(), *QUESTION_KEYS]
        raise InvalidInputError(
            f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    try:
        return TuneConfig(**data)
    except TypeError as exc:
        raise InvalidInputError(f"{source}: {exc}") from None


# Keys of a config file that set the question answering after training (see the module's docstring).
QUESTION_KEYS = ("questions", "knowledge_base", "passages", "answer_tokens")


def load_config(path: str | Path | None) -> TuneConfig:
    """The defaults, or the settings of a YAML file over them (its ``QUESTION_KEYS`` are left to
    :func:`load_question_settings`).

    Raises:
        InvalidInputError: unreadable file, invalid YAML, not a mapping, unknown keys, bad values.
    """
    return config_from_dict(
        {k: v for k, v in _read(path).items() if k not in QUESTION_KEYS}, str(path or "<config>")
    )


def load_question_settings(path: str | Path | None) -> dict:
    """The ``QUESTION_KEYS`` a config file sets (``questions`` as a path resolved against the file's
    folder); ``{}`` without a file.

    Raises:
        InvalidInputError: as :func:`load_config`, and values of the wrong type.
    """
    found = {k: v for k, v in _read(path).items() if k in QUESTION_KEYS}
    for key, kind in (("questions", str), ("knowledge_base", str), ("passages", int), ("answer_tokens", int)):
        if key in found and (not isinstance(found[key], kind) or isinstance(found[key], bool)):
            raise InvalidInputError(f"{path}: {key} must be a {kind.__name__}, got {found[key]!r}")
    if "questions" in found:
        found["questions"] = str(Path(path).parent / Path(found["questions"]).expanduser())
    return found


def _read(path: str | Path | None) -> dict:
    if path is None:
        return {}
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path} must be a YAML mapping of settings, e.g. `steps: 100`")
    return data
