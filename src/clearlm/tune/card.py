"""The adapter card (after Mitchell et al. 2019, "Model Cards for Model Reporting"): data sources with their
hashes, the base model and its hash, the hyperparameters, the measured figures, intended use, limitations."""

from __future__ import annotations

import datetime as dt

from clearlm import __version__

DEFAULT_INTENDED_USE = (
    "Adapting the base model to the vocabulary and style of the training corpus, for assistants whose "
    "answers a person reviews. Pair it with a knowledge base for facts: an adapter shifts the model's "
    "language, it is not a reliable store of facts."
)
LIMITATIONS = [
    "A small LoRA adapter trained briefly: it changes the model's language and habits far more than what the "
    "model knows, and it can still state false things fluently.",
    "Perplexity on held-out text measures fit to the domain's language, not answer correctness.",
    "Forgetting is measured on one general-text sample only (see figures.general_perplexity_change).",
    "The training data passed the PII policy named under data.pii; anything that policy misses may be "
    "reproduced by the model.",
    "It works only with the base model whose weights hash is recorded under base.weights_sha256.",
]


def build_card(name, base: dict, data, config, figures: dict, intended_use: str | None = None) -> dict:
    """The card as a dict (``data``: a TrainingData; ``config``: a TuneConfig; ``figures``: see run.py)."""
    import peft

    return {
        "name": name,
        "type": "lora-adapter",
        "base": base,
        "data": {
            "kind": data.kind,
            "sources": [{"path": s.path, "bytes": s.bytes, "sha256": s.sha256} for s in data.sources],
            "train_sequences": len(data.train),
            "held_out_sequences": len(data.held_out),
            "train_tokens": data.train_tokens,
            "truncated_sequences": data.truncated,
            "pii": data.pii,
        },
        "hyperparameters": config.to_dict(),
        "figures": figures,
        "intended_use": intended_use or DEFAULT_INTENDED_USE,
        "limitations": LIMITATIONS,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "generated_by": f"clearlm/{__version__} peft/{peft.__version__}",
    }


def _fmt(value, pattern="{:.3f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def card_markdown(card: dict) -> str:
    """The card as Markdown (the adapter folder's README.md)."""
    f, b, d = card["figures"], card["base"], card["data"]
    lines = [
        f"# Adapter {card['name']}",
        "",
        f"LoRA adapter for **{b['name']}** (weights sha256 `{b['weights_sha256']}`), {card['generated_by']}.",
        "",
        "## Intended use",
        "",
        card["intended_use"],
        "",
        "## Training data",
        "",
        f"{d['kind']}: {d['train_sequences']} training sequences ({d['train_tokens']:,} tokens), "
        f"{d['held_out_sequences']} held out. PII policy `{d['pii'].get('policy')}`: "
        f"{d['pii'].get('redacted_texts', 0)} texts redacted, findings {d['pii'].get('findings', {})}.",
        "",
        *[f"- `{s['path']}` ({s['bytes']:,} bytes, sha256 `{s['sha256']}`)" for s in d["sources"]],
        "",
        "## Figures",
        "",
        "| measure | before | after | change |",
        "|---|---|---|---|",
    ]
    for key, label in (("domain", "held-out domain perplexity"), ("general", "general-text perplexity")):
        m = f.get(key) or {}
        lines.append(
            f"| {label} | {_fmt((m.get('before') or {}).get('perplexity'))} | "
            f"{_fmt((m.get('after') or {}).get('perplexity'))} | {_fmt(m.get('change'), '{:+.1%}')} |"
        )
    lines += [
        "",
        f"Training: {f.get('steps')} steps, final loss {_fmt(f.get('final_loss'))}, "
        f"{_fmt(f.get('tokens_per_s'), '{:.0f}')} tokens/s, {_fmt(f.get('train_seconds'), '{:.0f}')} s.",
        "",
        *_questions(card),
        "## Hyperparameters",
        "",
        *[f"- {k}: {v}" for k, v in card["hyperparameters"].items()],
        "",
        "## Limitations",
        "",
        *[f"- {x}" for x in card["limitations"]],
        "",
    ]
    return "\n".join(lines)


def _questions(card: dict) -> list[str]:
    """The four-way question table: whole from the report when the card carries it, else the means."""
    from clearlm.tune.answers import markdown

    report = (card.get("report") or {}).get("questions")
    if report:
        return markdown(report)
    means = card["figures"].get("questions")
    if not means:
        return []
    setups = means["setups"]
    return [
        f"## Domain questions ({means['questions']}, knowledge base {means['knowledge_base'] or 'none'})",
        "",
        "| | " + " | ".join(setups) + " |",
        "|---|" + "---|" * len(setups),
        "| mean token F1 | " + " | ".join(_fmt(means["means"][s]["f1"], "{:.2f}") for s in setups) + " |",
        "| mean key recall | "
        + " | ".join(_fmt(means["means"][s]["key_recall"], "{:.2f}") for s in setups)
        + " |",
        "",
    ]
