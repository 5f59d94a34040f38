"""How a LoRA adapter changed what the model draws on: one prompt and one continuation attributed under the
base (adapter layers disabled), or under base + another adapter (the reference), and under the tuned model
(base + adapter), and the difference.

Both models are attributed on identical tokens: the continuation is generated once (by the tuned model) or
given, and forced as the target of both, as inseq compares models (``attribute(..., generated_texts=...)``).
Raw attribution scores of two models are not on one scale (a gradient's size changes with the weights), so
each target token's row is first normalised to shares of its attribution mass:

    share[t, s] = scores[t, s] / sum_s' |scores[t, s']|        (sum over every source, chat template included)

Then, per target token t, ``distance[t] = sum_s |share_tuned[t, s] - share_base[t, s]|`` (the L1 distance,
0 to 2: 0 when the two rows are proportional, 2 when they share no mass), and per source s,
``moved[s] = sum_t (share_tuned[t, s] - share_base[t, s])`` (signed: positive when the tuned model draws
more on s). The sources that moved most are the prompt's displayed tokens (no special or template tokens,
not the continuation's own earlier tokens) with the largest ``|moved|``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from clearlm.errors import InvalidInputError
from clearlm.explain import Attribution, explain
from clearlm.models import SamplingParams
from clearlm.models.backends.base import generate
from clearlm.models.chat import Prompt
from clearlm.serialize import JsonResult, json_ready

MEASURE = "L1 distance of each target token's attribution shares (row / sum |row|), 0 to 2"
SATURATION = 1e-3  # a mass ratio past this (either way): one model's scores are mostly rounding noise


@dataclass(slots=True)
class AdapterComparison(JsonResult):
    """One prompt and continuation attributed under the reference (the base, or base + another adapter) and
    the tuned model.

    Fields:
        adapter: the adapter's name.
        base, tuned: the two attributions (same sources and targets; ``tuned.model`` is ``BASE:ADAPTER``;
            ``base.model`` is ``BASE``, or ``BASE:REFERENCE``).
        base_share, tuned_share: float32[n_targets, n_sources], each row over the sum of its absolute
            scores (dimensionless; NaN where the source is not earlier than the target).
        distance: float32[n_targets], L1 distance of the two share rows of each target token, 0 to 2.
        moved: float32[n_sources], sum over target tokens of tuned share minus base share (signed).
        top_moved: the prompt's displayed sources with the largest ``|moved|``, largest first: dicts of ``source``
            (index), ``token`` (text), ``moved``, ``base`` and ``tuned`` (summed shares over the targets).
        mass_ratio: median over target tokens of the tuned row's sum |score| over the base row's. Far from 1
            with a gradient method (below ``SATURATION`` or above its inverse), one model is saturated: its
            probabilities are near 1, its gradients vanish, and its shares are mostly rounding noise
            (``warning`` then says so: occlusion measures the change directly).
        reference: the other adapter ``base`` is attributed under; None: the base itself.
    """

    adapter: str
    base: Attribution
    tuned: Attribution
    base_share: np.ndarray
    tuned_share: np.ndarray
    distance: np.ndarray
    moved: np.ndarray
    top_moved: list[dict[str, Any]]
    mass_ratio: float = 1.0
    reference: str | None = None

    @property
    def warning(self) -> str | None:
        """A sentence when one model's gradient scores are vanishingly small next to the other's, else None."""
        r = self.mass_ratio
        if (
            self.tuned.method == "occlusion"
            or not (r < SATURATION or r > 1 / SATURATION)
            or not np.isfinite(r)
        ):
            return None
        which = "tuned" if r < 1 else ("base" if self.reference is None else "reference")
        return (
            f"the {which} model's {self.tuned.method} scores are {min(r, 1 / r):.1e} times the other's: its "
            "probabilities are near 1 and its gradients vanish, so its shares are mostly noise; compare with "
            "--method occlusion, which measures the change in probability directly"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the attributions as ``Attribution.to_dict``, arrays as lists with NaN as null."""
        return {
            "adapter": self.adapter,
            "reference": self.reference,
            "method": self.tuned.method,
            "measure": MEASURE,
            "base": self.base.to_dict(),
            "tuned": self.tuned.to_dict(),
            "base_share": json_ready(self.base_share),
            "tuned_share": json_ready(self.tuned_share),
            "distance": json_ready(self.distance),
            "moved": json_ready(self.moved),
            "top_moved": json_ready(self.top_moved),
            "mass_ratio": json_ready(self.mass_ratio),
            "warning": self.warning,
        }


def shares(scores: np.ndarray) -> np.ndarray:
    """Each row of ``scores`` (float[n_targets, n_sources], NaN = masked) over the sum of its absolute finite
    values: float32 of the same shape, NaN kept; an all-zero row stays zero."""
    scores = np.asarray(scores, dtype=np.float64)
    mass = np.nansum(np.abs(scores), axis=1, keepdims=True)
    return (scores / np.where(mass > 0, mass, 1.0)).astype(np.float32)


def compare(
    base: Attribution,
    tuned: Attribution,
    adapter: str,
    top_k: int = 10,
    show_template: bool = False,
    reference: str | None = None,
) -> AdapterComparison:
    """Compare two attributions of the same tokens (see the module's docstring for the measures).

    Args:
        base, tuned: the same prompt and target attributed under the reference (the base, or base +
            adapter ``reference``) and the tuned model, by the same method at the same granularity.
        adapter, reference: the adapter's name, the reference adapter's or None (for the result).
        top_k: how many of the sources that moved most to list.
        show_template: rank special and chat-template tokens too.

    Raises:
        InvalidInputError: the two are not of the same method, sources and targets.
    """
    if (base.method, base.source_tokens, base.target_tokens, base.granularity) != (
        tuned.method,
        tuned.source_tokens,
        tuned.target_tokens,
        tuned.granularity,
    ):
        raise InvalidInputError(
            "the two attributions are not of the same tokens and method: attribute one prompt and one "
            "target, by one method, under both models"
        )
    b, t = shares(base.scores), shares(tuned.scores)
    diff = t.astype(np.float64) - b
    distance = np.nansum(np.abs(diff), axis=1).astype(np.float32)
    moved = np.nansum(diff, axis=0).astype(np.float32)
    visible = tuned.visible_sources(show_template)
    visible = visible[visible < tuned.n_prompt]  # the prompt's tokens (not the continuation's)
    order = visible[np.argsort(-np.abs(moved[visible]), kind="stable")][: max(top_k, 0)]
    top = [
        {
            "source": int(s),
            "token": tuned.source_tokens[s],
            "moved": float(moved[s]),
            "base": float(np.nansum(b[:, s])),
            "tuned": float(np.nansum(t[:, s])),
        }
        for s in order
    ]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.nanmedian(np.nansum(np.abs(tuned.scores), 1) / np.nansum(np.abs(base.scores), 1))
    return AdapterComparison(adapter, base, tuned, b, t, distance, moved, top, float(ratio), reference)


def compare_adapter(
    adapters,
    name: str,
    prompt: Prompt,
    target: str | None = None,
    *,
    method: str = "input_x_gradient",
    max_new_tokens: int = 16,
    top_k: int = 10,
    against: str | None = None,
    **options: Any,
) -> AdapterComparison:
    """Attribute ``prompt`` and one continuation under the base (or base + adapter ``against``) and under
    base + adapter ``name``, and compare.

    Args:
        adapters: a ``clearlm.tune.serve.AdapterSet`` (or an ``AdapterRouter``'s ``adapters``).
        name: the adapter (loaded on first use).
        prompt: text, or chat messages.
        target: the continuation to attribute; None: the tuned model's greedy continuation of at most
            ``max_new_tokens`` tokens, generated once and forced under both.
        method, options: the attribution method and its options (``clearlm.explain.explain``).
        against: another adapter to compare with (loaded on first use); None: the base.

    This calls the models directly (no policy, no audit record): the CLI and the server go through the
    pipeline instead (``clearlm explain --adapter NAME --compare``, ``POST /v1/adapters/{name}/compare``).

    Raises:
        AdapterNotFoundError, AdapterMismatchError: an adapter cannot be loaded over this base.
        InvalidInputError: ``against`` is ``name``; the tuned model generated nothing; what
            ``clearlm.explain.explain`` raises.
    """
    check_reference(name, against)
    tuned_view, base_view = adapters.view(name), adapters.view(against)
    if target is None:
        target = generate(tuned_view, prompt, SamplingParams(max_new_tokens=max_new_tokens)).text
        if not target.strip():
            raise InvalidInputError("the tuned model generated nothing for this prompt: give a target")
    results = []
    for view in (base_view, tuned_view):
        with view.lock:
            results.append(explain(view, prompt, target, method=method, **options))
    return compare(*results, adapter=name, top_k=top_k, reference=against)


def check_reference(adapter: str, against: str | None) -> None:
    """Raises InvalidInputError when an adapter would be compared with itself."""
    if against == adapter:
        raise InvalidInputError(
            f"the adapter {adapter!r} cannot be compared with itself: compare it with another adapter, or "
            "leave out the other to compare it with the base"
        )
