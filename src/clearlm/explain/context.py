"""Context attribution: which sources of a prompt (retrieved passages, chat messages) a response relied on.

Two views of every source:

- ablation (ContextCite: Cohen-Wang et al. 2024, "ContextCite: Attributing Model Generation to Context"):
  score the response, teacher-forced, under many ablations of the context (each source kept with
  probability 1/2, or every subset when there are few), fit a sparse linear surrogate (LASSO) of the
  score on the keep/drop masks, and report its weights and its out-of-fold fit (LDS). The score is the
  logit of the response's mean per-token probability (``scoring.logit_mean_prob``). A causal measure: what
  happens to the response when the source is gone.
- gradient: input x gradient (Shrikumar et al. 2016) of the response's log-probability, summed over each
  source's tokens. A local measure at the full context, in nats.

The sources are what a person sees (Captum's ``InterpretableInput`` idea): texts, and a function rendering
the prompt with any subset kept (``ContextSources``); tensors stay inside.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.explain.gradient import step_logprobs
from clearlm.explain.sequence import TeacherForced
from clearlm.explain.surrogate import KEEP_PROBABILITY, ablation_masks, fit_surrogate
from clearlm.models.backends.torch_scoring import response_logprobs
from clearlm.models.chat import Message, Prompt
from clearlm.models.tokens import encode_text
from clearlm.serialize import JsonResult, json_ready

SCHEMA_VERSION = 1
DEFAULT_ABLATIONS = 32
SCORE = "logit_mean_prob"


def logit_mean_prob(logprobs: np.ndarray, counted: Sequence[bool] | None = None) -> np.ndarray:
    """The logit of the mean per-token probability of a response: log(m / (1 - m)), m = mean_t p_t.

    ContextCite (Cohen-Wang et al. 2024, "ContextCite: Attributing Model Generation to Context", section 2)
    models the logit-scaled probability of the response with a linear surrogate: unbounded, unlike a
    probability, and close to linear in the number of supporting sources kept. The mean over tokens keeps
    the target on one scale whatever the response's length.

    Args:
        logprobs: float[n, T], per-token log-probabilities (``response_logprobs``).
        counted: bool[T], the tokens that count (default all); at least one must.

    Returns:
        float64[n]. m is kept within [1e-15, 1 - 1e-15] so the value stays finite (|logit| <= 34.5).
    """
    lp = np.asarray(logprobs, dtype=np.float64)
    if counted is not None:
        keep = np.asarray(counted, dtype=bool)
        if keep.shape != (lp.shape[1],) or not keep.any():
            raise ValueError(f"counted must be bool[{lp.shape[1]}] with at least one True")
        lp = lp[:, keep]
    log_m = np.logaddexp.reduce(lp, axis=1) - np.log(lp.shape[1])
    log_m = np.clip(log_m, np.log(1e-15), np.log1p(-1e-15))
    return log_m - np.log(-np.expm1(log_m))


@dataclass(frozen=True, slots=True)
class ContextSources:
    """The parts of a prompt that attribution may leave out, and the prompt with any subset of them kept.

    Fields:
        texts: str[n_sources], each source's text as it appears, verbatim, in the rendered prompt when kept
            (the gradient view finds its tokens by these characters; sources appear in this order).
        render: maps a mask bool[n_sources] (True = kept) to the prompt (a string, or chat messages).
    """

    texts: tuple[str, ...]
    render: Callable[[Sequence[bool]], Prompt]

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", tuple(self.texts))
        if not self.texts:
            raise InvalidInputError("context attribution needs at least one source")
        if any(not t for t in self.texts):
            raise InvalidInputError("a context source is empty: give every source some text")

    @property
    def n_sources(self) -> int:
        return len(self.texts)

    @classmethod
    def in_message(
        cls,
        texts: Sequence[str],
        *,
        before: str = "",
        after: str = "",
        separator: str = "\n\n",
        system: str | None = None,
    ) -> ContextSources:
        """Sources joined into one user message, ``before + separator.join(kept) + after``, after an
        optional system message (which, coming first, is a prefix every ablation shares)."""
        texts = tuple(texts)

        def render(mask: Sequence[bool]) -> Prompt:
            kept = [t for t, keep in zip(texts, mask, strict=True) if keep]
            user = Message("user", before + separator.join(kept) + after)
            return [Message("system", system), user] if system is not None else [user]

        return cls(texts, render)

    @classmethod
    def from_messages(
        cls, messages: Sequence[Message], sources: Sequence[int] | None = None
    ) -> ContextSources:
        """Chat messages as sources: ``sources`` (indices into ``messages``; default every message but the
        last) may be left out, the others are always kept."""
        messages = list(messages)
        chosen = list(range(len(messages) - 1)) if sources is None else [int(i) for i in sources]
        if any(not 0 <= i < len(messages) for i in chosen) or len(set(chosen)) != len(chosen):
            raise InvalidInputError(f"source message indices must be distinct, in 0..{len(messages) - 1}")
        chosen.sort()

        def render(mask: Sequence[bool]) -> Prompt:
            dropped = {i for i, keep in zip(chosen, mask, strict=True) if not keep}
            return [m for i, m in enumerate(messages) if i not in dropped]

        return cls(tuple(messages[i].content for i in chosen), render)


@dataclass(slots=True)
class ContextAttribution(JsonResult):
    """How much a response depended on each source of its prompt.

    Fields (n = n_sources, m = n_ablations, T = response tokens):
        model: the model's name.
        sources: str[n], the sources' texts.
        response: the response text; response_ids: int[T], its tokens (the scored sequence).
        counted: bool[T], the response tokens the score counts (e.g. all but citation markers).
        masks: bool[m, n], the ablations (True = source kept); the first keeps every source.
        logprobs: float64[m, T], log p(response_t | ablated prompt, response_<t), nats.
        scores: float64[m], the score of each ablation: the logit of the mean probability of the counted
            tokens (``SCORE``, following ContextCite).
        weights: float64[n], the surrogate's weight of each source: the change in score (logit units) when
            the source is kept rather than dropped. Larger = relied on more.
        intercept: the surrogate's score with every source dropped.
        lds: linear datamodeling score, the Spearman correlation between the surrogate's out-of-fold
            predictions and the real scores (1 = ranks every ablation right; NaN when undefined).
        r2: the surrogate's out-of-fold R^2 (NaN when undefined).
        exact: True when every subset of sources was scored (2^n <= the ablation budget).
        gradient: float64[n] or None, input x gradient of the counted tokens' total log-probability
            summed over each source's tokens (nats).
        gradient_shares: float64[n] or None, ``gradient / sum(|gradient|)``.
        source_spans: [start, end) token indices of each source in the full prompt.
        params: ablations, seed, keep probability, alpha, folds, score, gradient method.
        seconds: wall-clock seconds of each stage ("ablation", "gradient").
    """

    model: str
    sources: list[str]
    response: str
    response_ids: list[int]
    counted: list[bool]
    masks: np.ndarray
    logprobs: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    intercept: float
    lds: float
    r2: float
    exact: bool
    gradient: np.ndarray | None = None
    gradient_shares: np.ndarray | None = None
    source_spans: list[tuple[int, int]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, t = len(self.sources), len(self.response_ids)
        self.masks = np.asarray(self.masks, dtype=bool).reshape(-1, n)
        m = len(self.masks)
        self.logprobs = np.asarray(self.logprobs, dtype=np.float64).reshape(m, t)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        self.weights = np.asarray(self.weights, dtype=np.float64)
        for name, shape in (("scores", (m,)), ("weights", (n,))):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
        if len(self.counted) != t:
            raise ValueError(
                f"counted has {len(self.counted)} entries, expected {t} (one per response token)"
            )
        for name in ("gradient", "gradient_shares"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float64)
                if value.shape != (n,):
                    raise ValueError(f"{name} has shape {value.shape}, expected ({n},)")
                setattr(self, name, value)
        self.source_spans = [tuple(s) for s in self.source_spans]

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    @property
    def n_ablations(self) -> int:
        return len(self.masks)

    @property
    def full_score(self) -> float:
        """The score with every source kept."""
        full = np.flatnonzero(self.masks.all(axis=1))
        return float(self.scores[full[0]]) if len(full) else float("nan")

    def ranking(self) -> list[int]:
        """Source indices by ablation weight, largest first (ties in source order)."""
        return [int(i) for i in np.argsort(-self.weights, kind="stable")]

    # ---- serialization -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: arrays become nested lists, NaN becomes null; float64 values survive exactly."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for f in fields(self):
            out[f.name] = json_ready(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContextAttribution:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"unsupported context attribution schema version {data.get('schema_version')!r}")
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for name in ("logprobs", "scores", "weights", "gradient", "gradient_shares"):
            if kwargs.get(name) is not None:
                kwargs[name] = np.array(_nan_for_none(kwargs[name]), dtype=np.float64)
        for name in ("intercept", "lds", "r2"):
            kwargs[name] = math.nan if kwargs.get(name) is None else float(kwargs[name])
        return cls(**kwargs)


def context_attribution(
    backend,
    sources: ContextSources,
    response: str | Sequence[int],
    *,
    ablations: int = DEFAULT_ABLATIONS,
    seed: int = 0,
    alpha: float = 0.01,
    folds: int = 4,
    gradient: bool = True,
    counted: Sequence[bool] | None = None,
    batch_size: int = 4,
    share_prefixes: bool = True,
) -> ContextAttribution:
    """Attribute ``response`` to each of ``sources`` by ablation (ContextCite) and by input x gradient.

    Cost: the distinct token runs of ``ablations`` teacher-forced forward passes (prefixes shared by
    several ablations run once, see ``scoring.response_logprobs``), and with ``gradient`` one forward and
    one backward pass over the full prompt and response (the input x gradient of the summed log-probability
    equals the sum over response tokens of ``explain(..., method="input_x_gradient")``'s rows, at the cost
    of one backward pass instead of one per token).

    Args:
        backend: a ``TorchBackend``, or with ``gradient=False`` any backend with ``response_logprobs``
            (``LlamaCppBackend``: the ablations scored by llama.cpp, see ``llamacpp_scoring``).
        sources: the sources and how to render the prompt with a subset of them.
        response: the response, as text (tokenized without special tokens) or token ids (e.g. a generation's
            ``Completion.token_ids``).
        ablations: the ablation budget (>= 2): every subset when 2^n_sources fits in it, else this many
            distinct random ablations (the first keeps every source).
        seed: seeds the random ablations and the cross-validation folds.
        alpha: LASSO's L1 strength (ContextCite's default, 0.01).
        folds: cross-validation folds for the fit quality (LDS, R^2).
        gradient: also compute the gradient view.
        counted: bool[T], the response tokens the score counts (default all; e.g. leave citation markers
            out, so that a passage's weight measures the content drawn from it, not its number).
        batch_size: ablations per forward pass.
        share_prefixes: run token prefixes shared by several ablations once (key/value cache).

    Returns:
        A ``ContextAttribution``.

    Raises:
        BackendUnavailableError: ``gradient`` on a backend without gradients (llamacpp), or a backend
            that cannot score (vllm).
        InvalidInputError: no sources or an empty one; an empty response; ``ablations`` < 2; ``counted`` of
            the wrong length or all False; a kept source's text missing from the rendered prompt; prompt
            plus response longer than the model's context.
    """
    if gradient and getattr(backend, "kind", None) != "torch":
        raise BackendUnavailableError(
            "the gradient view of context attribution needs the torch backend: load the model with "
            "backend='torch', or pass gradient=False"
        )
    if not hasattr(backend, "response_logprobs"):
        raise BackendUnavailableError(
            f"the {getattr(backend, 'kind', '?')} backend cannot score responses: use the torch or "
            "llamacpp backend"
        )
    if ablations < 2:
        raise InvalidInputError(f"context attribution needs at least 2 ablations, got {ablations}")
    response_ids = _response_ids(backend, response)
    n, t = sources.n_sources, len(response_ids)
    keep = [True] * t if counted is None else [bool(c) for c in counted]
    if len(keep) != t or not any(keep):
        raise InvalidInputError(
            f"counted must give one flag per response token ({t}) with at least one True, got {len(keep)}"
        )
    full = backend.encode(sources.render([True] * n))
    if len(full.token_ids) + t > backend.context_length:
        raise InvalidInputError(
            f"prompt plus response is {len(full.token_ids) + t:,} tokens but the model's context holds "
            f"{backend.context_length:,}: use fewer or shorter sources"
        )
    spans = source_token_spans(backend, full, sources.texts)

    started = time.perf_counter()
    masks, exact = ablation_masks(n, ablations, seed)
    prompts = [
        list(full.token_ids) if mask.all() else backend.encode(sources.render(mask)).token_ids
        for mask in masks
    ]
    if backend.kind == "torch":
        logprobs = response_logprobs(
            backend.model, prompts, response_ids, batch_size=batch_size, share_prefixes=share_prefixes
        )
    else:  # llamacpp: its own scorer, every shared prefix decoded once (batch_size does not apply)
        logprobs = backend.response_logprobs(prompts, response_ids)
    scores = logit_mean_prob(logprobs, keep)
    fit = fit_surrogate(masks, scores, alpha=alpha, folds=folds, seed=seed)
    seconds = {"ablation": time.perf_counter() - started}

    grad = shares = None
    if gradient:
        started = time.perf_counter()
        per_token = gradient_per_token(backend.model, list(full.token_ids), response_ids, keep)
        grad = np.array([per_token[a:b].sum() for a, b in spans], dtype=np.float64)
        total = np.abs(grad).sum()
        shares = grad / total if total > 0 else np.zeros(n)
        seconds["gradient"] = time.perf_counter() - started

    return ContextAttribution(
        model=backend.name,
        sources=list(sources.texts),
        response=backend.decode(response_ids),
        response_ids=list(response_ids),
        counted=keep,
        masks=masks,
        logprobs=logprobs,
        scores=scores,
        weights=fit.weights,
        intercept=fit.intercept,
        lds=fit.lds,
        r2=fit.r2,
        exact=exact,
        gradient=grad,
        gradient_shares=shares,
        source_spans=spans,
        params={
            "ablations": int(ablations),
            "seed": int(seed),
            "keep_probability": KEEP_PROBABILITY,
            "alpha": float(alpha),
            "folds": fit.folds,
            "score": SCORE,
            "gradient_method": "input_x_gradient" if gradient else None,
        },
        seconds=seconds,
    )


def source_token_spans(backend, encoded, texts: Sequence[str]) -> list[tuple[int, int]]:
    """[start, end) token indices of each source in an encoded prompt.

    Each text is found, in order, in the rendered prompt (``encoded.text``); its characters map to the
    tokens whose character offsets overlap them (the fast tokenizer's offset mapping).

    Raises:
        InvalidInputError: a text not found verbatim after the previous one (the render must keep each
            source's text as given), or a rendered prompt whose tokens cannot be matched to characters.
    """
    offsets = _token_offsets(backend.tokenizer, encoded)
    spans, cursor = [], 0
    for i, text in enumerate(texts):
        at = encoded.text.find(text, cursor)
        if at < 0:
            raise InvalidInputError(
                f"source {i + 1} is not in the rendered prompt verbatim (after source {i}): "
                "render each kept source's text unchanged and in order"
            )
        end = at + len(text)
        hit = [k for k, (s, e) in enumerate(offsets) if e > s and s < end and e > at]
        if not hit:
            raise InvalidInputError(f"source {i + 1} maps to no token of the rendered prompt")
        spans.append((hit[0], hit[-1] + 1))
        cursor = end
    return spans


def gradient_per_token(model, prompt_ids: Sequence[int], response_ids: Sequence[int], counted) -> np.ndarray:
    """float64[n_prompt]: input x gradient (sum over the embedding dimension of x * df/dx) of
    f = sum of log p(response_t) over counted response tokens, for every prompt token (nats)."""
    seq = TeacherForced(
        ids=torch.tensor(list(prompt_ids) + list(response_ids), dtype=torch.long),
        n_prompt=len(prompt_ids),
        tokens=[],
        roles=[],
        message_index=[],
        special=[],
    )
    device = next(model.parameters()).device
    with torch.no_grad():
        x = model.get_input_embeddings()(seq.ids[None].to(device))
    x.requires_grad_(True)
    target, _ = step_logprobs(model, x, seq)
    weight = torch.tensor(counted, dtype=target.dtype, device=target.device)
    (grad,) = torch.autograd.grad((target[0] * weight).sum(), x)
    per_token = (grad[0].double() * x[0].detach().double()).sum(-1)
    return per_token[: seq.n_prompt].cpu().numpy()


def _response_ids(backend, response: str | Sequence[int]) -> list[int]:
    if isinstance(response, str):
        ids = encode_text(backend.tokenizer, response)
    else:
        ids = [int(i) for i in response]
    if not ids:
        raise InvalidInputError("the response is empty: give the text (or token ids) to attribute")
    return list(ids)


def _token_offsets(tokenizer, encoded) -> list[tuple[int, int]]:
    """Character offsets of ``encoded``'s tokens in ``encoded.text``, tokenized as ``encode_prompt`` does."""
    if len(getattr(encoded, "offsets", ())) == len(encoded.token_ids):  # control-token text stays text
        return [tuple(o) for o in encoded.offsets]
    for special in (False, True):
        enc = tokenizer(encoded.text, add_special_tokens=special, return_offsets_mapping=True)
        if list(enc["input_ids"]) == list(encoded.token_ids):
            return [tuple(o) for o in enc["offset_mapping"]]
    raise InvalidInputError("cannot map the prompt's tokens to its characters (a tokenizer without offsets?)")


def _nan_for_none(value: Any) -> Any:
    if value is None:
        return math.nan
    if isinstance(value, list):
        return [_nan_for_none(v) for v in value]
    return value
