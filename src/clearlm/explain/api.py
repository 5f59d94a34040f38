"""``explain``: one entry point from a prompt (and optional target) to a typed ``Attribution``."""

from __future__ import annotations

import inspect
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.explain import attention, gradient, occlusion, progress, quadrature
from clearlm.explain.aggregate import word_spans
from clearlm.explain.result import Attribution
from clearlm.explain.sequence import TeacherForced, build_sequence
from clearlm.models.chat import Prompt
from clearlm.models.tokens import encode_text

METHODS = (
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "attention",
    "attention_rollout",
    "occlusion",
    "contrastive",
)
DEFAULT_METHOD = "input_x_gradient"


def explain(
    backend,
    prompt: Prompt,
    target: str | None = None,
    *,
    method: str = DEFAULT_METHOD,
    max_new_tokens: int = 32,
    progress_callback: progress.Callback | None = None,
    **options: Any,
) -> Attribution:
    """Attribute every target token to every earlier token (prompt and previously generated).

    Args:
        backend: a ``TorchBackend`` (explanations need gradients or attention weights).
        prompt: text to continue, or chat messages (rendered with the model's chat template).
        target: text to force as the continuation; None explains the model's greedy continuation of at most
            ``max_new_tokens`` tokens.
        method: one of METHODS.
        options: the method's options (see ``method_options``), e.g. ``steps=128`` for integrated
            gradients, ``contrast=" London"`` for contrastive (one token replaces the
            target's token at step ``position``, default 0), ``unit="word"`` for occlusion, and
            ``sequence=True`` (gradient methods, contrastive, occlusion) to attribute the whole target's
            log-probability in one row, as Captum's ``seq_attr``, instead of one row per target token.
        progress_callback: called as ``(stage, done, total)`` between batches (``clearlm.explain.progress``);
            what it raises (``progress.Cancelled``) stops the work and propagates. Default: the callback of
            an enclosing ``progress.reporting`` block, if any.

    Returns:
        An ``Attribution`` at token level (occlusion with ``unit="word"``: word level); with ``sequence``,
        one target row holding the whole target text.

    Raises:
        InvalidInputError: empty prompt or target, text longer than the context, unknown method or option,
            bad option value. BackendUnavailableError: a backend without gradients (llamacpp).
    """
    if method not in METHODS:
        raise InvalidInputError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if getattr(backend, "kind", None) != "torch":
        raise BackendUnavailableError(
            "explanations need the torch backend: load the model with backend='torch'"
        )
    runner = _RUNNERS[method]
    allowed = method_options(method)
    unknown = set(options) - set(allowed)
    if unknown:
        raise InvalidInputError(
            f"unknown option(s) {', '.join(sorted(unknown))} for method {method!r}; "
            f"it accepts: {', '.join(allowed) or 'none'}"
        )
    params = {**allowed, **options}
    _check_options(method, params)
    seq = build_sequence(backend, prompt, target, max_new_tokens=max_new_tokens)
    with progress.reporting(progress_callback) if progress_callback else nullcontext():
        progress.stage("attribution")
        fields = runner(backend, seq, **params)
        progress.finish()
    spans = fields.pop("source_spans", [(i, i + 1) for i in range(seq.n_sources)])
    measured = fields.pop("measured", {})  # figures of the run itself, kept with the parameters
    targets = seq.tokens[seq.n_prompt :]
    return Attribution(
        method=method,
        model=backend.name,
        source_tokens=["".join(seq.tokens[a:b]) for a, b in spans],
        # a sequence-level result has one row: the whole target
        target_tokens=["".join(targets)] if params.get("sequence") else targets,
        source_roles=[seq.roles[a] for a, _ in spans],
        source_message=[seq.message_index[a] for a, _ in spans],
        source_special=[any(seq.special[a:b]) for a, b in spans],
        n_prompt=sum(1 for a, _ in spans if a < seq.n_prompt),
        source_spans=spans,
        params={k: v for k, v in params.items() if k not in _INTERNAL} | measured,
        token_ids=seq.ids.tolist(),
        granularity="token" if all(b - a == 1 for a, b in spans) and len(spans) == seq.n_sources else "word",
        **fields,
    )


def method_options(method: str) -> dict[str, Any]:
    """The options ``method`` accepts, with their defaults."""
    sig = inspect.signature(_RUNNERS[method])
    return {n: p.default for n, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}


def _check_options(method: str, params: dict[str, Any]) -> None:
    """Reject bad option values before any model work (generation can take a while)."""
    if method == "integrated_gradients":
        quadrature.check_placement(params["steps"], params["placement"], params["tolerance"])
        if params["baseline"] not in gradient.BASELINES:
            raise InvalidInputError(
                f"unknown baseline {params['baseline']!r}: choose one of {', '.join(gradient.BASELINES)}"
            )
    if method == "contrastive" and not params["contrast"]:
        raise InvalidInputError("contrastive attribution needs a contrast: the token(s) to compare against")
    if method == "occlusion" and params["unit"] not in ("token", "word"):
        raise InvalidInputError(f"occlusion unit must be 'token' or 'word', got {params['unit']!r}")


# Options that change how the work is batched, not the result: left out of the recorded parameters.
_INTERNAL = {"internal_batch_size", "rows_per_call", "batch_size"}


def _probs(logprobs: np.ndarray) -> np.ndarray:
    return np.exp(logprobs).astype(np.float32)


def _gradient_fields(backend, seq, method, contrast_ids=None, **kw) -> dict[str, Any]:
    out = gradient.gradient_attribution(backend.model, seq, method, contrast_ids=contrast_ids, **kw)
    fields: dict[str, Any] = {"scores": out.scores, "target_probs": _probs(out.target_logprobs)}
    if out.completeness_gap is not None:
        fields["completeness_gap"] = out.completeness_gap
        fields["measured"] = {"gradient_evaluations": out.gradient_evaluations}
    if out.contrast_logprobs is not None:
        fields["contrast_probs"] = _probs(out.contrast_logprobs)
    return fields


def _saliency(backend, seq, *, sequence: bool = False, rows_per_call: int = 8):
    return _gradient_fields(backend, seq, "saliency", sequence=sequence, rows_per_call=rows_per_call)


def _input_x_gradient(backend, seq, *, sequence: bool = False, rows_per_call: int = 8):
    return _gradient_fields(backend, seq, "input_x_gradient", sequence=sequence, rows_per_call=rows_per_call)


def _integrated_gradients(
    backend,
    seq,
    *,
    steps: int = 512,
    baseline: str = "zero",
    placement: str = "adaptive",
    tolerance: float = 0.01,
    sequence: bool = False,
    internal_batch_size: int = 8,
    rows_per_call: int = 8,
):
    return _gradient_fields(
        backend,
        seq,
        "integrated_gradients",
        steps=steps,
        baseline=baseline,
        placement=placement,
        tolerance=tolerance,
        sequence=sequence,
        internal_batch_size=internal_batch_size,
        rows_per_call=rows_per_call,
    )


def _contrastive(
    backend,
    seq,
    *,
    contrast: str | None = None,
    position: int = 0,
    base: str = "input_x_gradient",
    sequence: bool = False,
    rows_per_call: int = 8,
):
    if base not in ("saliency", "input_x_gradient", "integrated_gradients"):
        raise InvalidInputError(f"contrastive base {base!r} must be a gradient method")
    ids = encode_text(backend.tokenizer, contrast)
    if not 0 <= position < seq.n_targets:
        raise InvalidInputError(
            f"contrast position {position} is outside the target's {seq.n_targets} tokens (0 to "
            f"{seq.n_targets - 1})"
        )
    if position and len(ids) != 1:
        raise InvalidInputError(
            f"a contrast at position {position} must be one token; {contrast!r} is {len(ids)}"
        )
    if len(ids) == 1 and seq.n_targets > 1:  # contrast one step (the first, or ``position``)
        ids = [*seq.target_ids[:position].tolist(), ids[0], *seq.target_ids[position + 1 :].tolist()]
    if len(ids) != seq.n_targets:
        raise InvalidInputError(
            f"the contrast {contrast!r} is {len(ids)} tokens but the target is {seq.n_targets}: give one token "
            "(compared at the first step) or as many tokens as the target"
        )
    # Where the contrast equals the target, f = log p(a) - log p(a) is 0 and so is its gradient.
    fields = _gradient_fields(
        backend, seq, base, contrast_ids=torch.tensor(ids), sequence=sequence, rows_per_call=rows_per_call
    )
    contrast_tokens = [backend.tokenizer.decode([i]) for i in ids]
    fields["contrast_tokens"] = ["".join(contrast_tokens)] if sequence else contrast_tokens
    return fields


def _attention(backend, seq, *, layer: int | None = None, head: int | None = None):
    weights = attention.attention_weights(backend.model, seq)
    scores, per_layer_head = attention.attention_scores(weights, seq, layer=layer, head=head)
    return {
        "scores": scores,
        "target_probs": _target_probs(backend, seq),
        "layer_head_scores": per_layer_head,
    }


def _attention_rollout(backend, seq):
    weights = attention.attention_weights(backend.model, seq)
    return {"scores": attention.rollout_scores(weights, seq), "target_probs": _target_probs(backend, seq)}


def _occlusion(
    backend,
    seq,
    *,
    unit: str = "token",
    baseline: str | None = None,
    sequence: bool = False,
    batch_size: int = 8,
):
    baseline_id = None
    if baseline is not None:
        ids = backend.tokenizer(baseline, add_special_tokens=False)["input_ids"]  # may name a special token
        if len(ids) != 1:
            raise InvalidInputError(
                f"the occlusion baseline {baseline!r} must be exactly one token, got {len(ids)}"
            )
        baseline_id = ids[0]
    groups = [(i, i + 1) for i in range(seq.n_sources)]
    if unit == "word":
        groups = word_spans(seq.tokens[:-1], seq.special[:-1], seq.message_index[:-1])
    scores, logprobs = occlusion.occlusion_scores(
        backend.model, seq, groups, baseline_id=baseline_id, batch_size=batch_size
    )
    if sequence:  # the drop in the whole target's log-probability; NaN rows are targets a group cannot reach
        scores, logprobs = np.nansum(scores, 0, keepdims=True), logprobs.sum(keepdims=True)
    return {"scores": scores, "target_probs": _probs(logprobs), "source_spans": groups}


def _target_probs(backend, seq: TeacherForced) -> np.ndarray:
    with torch.no_grad():
        device = next(backend.model.parameters()).device
        embeds = backend.model.get_input_embeddings()(seq.ids[None].to(device))
        logp = gradient.step_logprobs(backend.model, embeds, seq)[0][0]
    return _probs(logp.double().cpu().numpy())


_RUNNERS = {
    "saliency": _saliency,
    "input_x_gradient": _input_x_gradient,
    "integrated_gradients": _integrated_gradients,
    "attention": _attention,
    "attention_rollout": _attention_rollout,
    "occlusion": _occlusion,
    "contrastive": _contrastive,
}
