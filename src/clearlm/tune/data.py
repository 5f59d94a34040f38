"""Training data: plain documents (continued pretraining) or chat JSONL (supervised fine-tuning).

Documents (.txt .md .html .pdf, a file or a folder) are read and chunked by the knowledge module
(``clearlm.knowledge.documents`` / ``chunking``: sections, paragraphs, sentences), each chunk at most
``seq_len`` tokens of the base model's tokenizer; every token is a target. Chat JSONL has one conversation a
line, ``{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}`` (the OpenAI format);
it is rendered with the base model's chat template and only the assistant turns' tokens (their content and
the end-of-turn token) are targets: every other label is ``IGNORE`` (-100, PyTorch's cross-entropy
ignore_index), as in TRL's ``assistant_only_loss``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from clearlm.errors import InvalidInputError
from clearlm.knowledge.chunking import chunk_document, tokenizer_offsets
from clearlm.knowledge.documents import KINDS, Document, Section, read_document
from clearlm.knowledge.errors import DocumentError
from clearlm.tune.screen import Screen

IGNORE = -100
ROLES = ("system", "user", "assistant")
MIN_CHUNK_TOKENS = 8  # shorter chunks (a lone heading) teach little and are dropped


@dataclass(frozen=True, slots=True)
class Example:
    """One training sequence: ``input_ids`` (int[T]) and ``labels`` (int[T], IGNORE where no loss)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def target_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


@dataclass(frozen=True, slots=True)
class Source:
    """A data file: its path, size (bytes) and the sha256 of its bytes (recorded on the adapter card)."""

    path: str
    bytes: int
    sha256: str


@dataclass
class TrainingData:
    """``kind`` "documents" or "chat"; ``train`` and ``held_out`` examples; the files read; the PII summary."""

    kind: str
    train: list[Example]
    held_out: list[Example]
    sources: list[Source]
    pii: dict = field(default_factory=dict)
    truncated: int = 0  # sequences cut at seq_len

    @property
    def train_tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.train)


def data_files(path: str | Path) -> list[Path]:
    """The files of a data set: ``path`` itself, or the supported files under a folder (sorted).

    Raises:
        InvalidInputError: nothing there, or a folder with no .jsonl or document files.
    """
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InvalidInputError(f"no data at {path}: give a file or a folder of documents")
    wanted = set(KINDS) | {".jsonl"}
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
    if not files:
        raise InvalidInputError(
            f"{path} holds no data: add .jsonl chat files or documents ({', '.join(KINDS)})"
        )
    return files


def load_data(path, tokenizer, seq_len: int, screen: Screen, held_out: float = 0.1, eval_path=None):
    """Read, screen and tokenize the data at ``path`` into a :class:`TrainingData`.

    ``held_out``: the fraction of chunks (or conversations) kept for the domain perplexity when
    ``eval_path`` (separate evaluation data of the same kind) is not given.

    Raises:
        InvalidInputError: missing, empty or unreadable data; chat JSONL mixed with documents; bad JSON or
            roles (with the line number); a chat file for a base without a chat template.
        PolicyViolationError: the PII policy refuses the data.
    """
    files = data_files(path)
    kind = _kind(files, path)
    examples, sources, truncated = _examples(files, kind, tokenizer, seq_len, screen)
    if eval_path is not None:
        eval_files = data_files(eval_path)
        if _kind(eval_files, eval_path) != kind:
            raise InvalidInputError(f"the evaluation data {eval_path} must be of the same kind as {path}")
        held, _, _ = _examples(eval_files, kind, tokenizer, seq_len, screen)
        train = examples
    else:
        every = round(1 / held_out) if held_out > 0 else 0
        held = [e for i, e in enumerate(examples) if every and len(examples) > 1 and i % every == every - 1]
        train = [
            e for i, e in enumerate(examples) if not (every and len(examples) > 1 and i % every == every - 1)
        ]
    if not train:
        raise InvalidInputError(f"{path} gave no training sequences: add more text")
    return TrainingData(kind, train, held, sources, screen.summary(), truncated)


def load_eval_data(path, tokenizer, seq_len: int, screen: Screen) -> TrainingData:
    """Evaluation-only data (an adapter measured again, :mod:`clearlm.tune.evaluation`): every sequence
    held out, none to train on. Raises as :func:`load_data`."""
    files = data_files(path)
    kind = _kind(files, path)
    examples, sources, truncated = _examples(files, kind, tokenizer, seq_len, screen)
    return TrainingData(kind, [], examples, sources, screen.summary(), truncated)


def _kind(files: list[Path], path) -> str:
    chat = [f for f in files if f.suffix.lower() == ".jsonl"]
    if chat and len(chat) != len(files):
        raise InvalidInputError(f"{path} mixes chat .jsonl files and documents: tune on one kind at a time")
    return "chat" if chat else "documents"


def _examples(files, kind, tokenizer, seq_len, screen):
    examples: list[Example] = []
    sources, truncated = [], 0
    for f in files:
        try:
            data = f.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {f}: {exc.strerror}") from None
        if not data.strip():
            raise InvalidInputError(f"{f} is empty: give a file with text in it")
        sources.append(Source(str(f), len(data), hashlib.sha256(data).hexdigest()))
        if kind == "chat":
            for n, messages in _conversations(f, data):
                messages = [
                    {**m, "content": screen.text(m["content"], f"{f} line {n}", m["role"])} for m in messages
                ]
                ex, cut = chat_example(tokenizer, messages, seq_len, f"{f} line {n}")
                truncated += cut
                if ex is not None:
                    examples.append(ex)
        else:
            for ex, cut in _document_examples(f, data, tokenizer, seq_len, screen):
                truncated += cut
                examples.append(ex)
    if not examples:
        raise InvalidInputError(f"no usable text in {', '.join(str(f) for f in files)}")
    return examples, sources, truncated


def _document_examples(f: Path, data: bytes, tokenizer, seq_len: int, screen: Screen):
    try:
        doc = read_document(f, data)
    except DocumentError as exc:
        raise InvalidInputError(f"cannot use {f} as training data: {exc}") from None
    doc = _screened(doc, screen)
    for chunk in chunk_document(doc, tokenizer_offsets(tokenizer), chunk_tokens=seq_len, overlap=0):
        ids = tokenizer(chunk.text, add_special_tokens=False)["input_ids"]
        if len(ids) < MIN_CHUNK_TOKENS:
            continue
        cut = len(ids) > seq_len
        ids = tuple(ids[:seq_len])
        yield Example(ids, ids), int(cut)


def _screened(doc: Document, screen: Screen) -> Document:
    """``doc`` with every section (and the heading text between sections) passed through the screen;
    section offsets are rebuilt for the redacted text."""
    pieces, sections, pos, out = [], [], 0, 0
    for s in doc.sections:
        gap = screen.text(doc.text[pos : s.start], doc.path)
        body = screen.text(doc.text[s.start : s.end], doc.path)
        pieces += [gap, body]
        start = out + len(gap)
        sections.append(Section(s.heading_path, start, start + len(body)))
        out, pos = start + len(body), s.end
    pieces.append(screen.text(doc.text[pos:], doc.path))
    return Document(doc.path, doc.kind, doc.title, "".join(pieces), tuple(sections), doc.sha256)


def _conversations(f: Path, data: bytes):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{f} is not UTF-8 text (invalid byte at offset {exc.start})") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{f} line {n}: not valid JSON ({exc.msg})") from None
        messages = record.get("messages") if isinstance(record, dict) else None
        if not isinstance(messages, list) or not messages:
            raise InvalidInputError(
                f'{f} line {n}: expected {{"messages": [{{"role": ..., "content": ...}}]}}'
            )
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                role = m.get("role") if isinstance(m, dict) else m
                raise InvalidInputError(
                    f"{f} line {n}: message {i} has role {role!r}; use one of {', '.join(ROLES)}"
                )
            if not isinstance(m.get("content"), str):
                raise InvalidInputError(f"{f} line {n}: message {i} needs a text 'content'")
        if not any(m["role"] == "assistant" for m in messages):
            raise InvalidInputError(f"{f} line {n}: no assistant message, so nothing to learn")
        yield n, [{"role": m["role"], "content": m["content"]} for m in messages]


def chat_example(
    tokenizer, messages: list[dict], seq_len: int, where: str = ""
) -> tuple[Example | None, int]:
    """Tokenize one conversation with the chat template; labels are the assistant turns' tokens only.

    The rendered text is cut into prompt and assistant segments (each assistant segment runs from the end of
    the generation prompt to the end of its turn, trailing white space excluded) and each segment is
    tokenized on its own, so a label never straddles a boundary. Returns (example or None when no assistant
    token survives truncation at ``seq_len``, 1 if truncated else 0).

    Raises:
        InvalidInputError: the tokenizer has no chat template, or one whose renderings are not prefixes of
            each other (it rewrites earlier turns).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidInputError(
            "the base model has no chat template, so chat data cannot be rendered: tune it on plain documents"
        )

    def render(msgs, gen=False):
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    full = render(messages)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start, end_text = len(render(messages[:i], gen=True)), render(messages[: i + 1])
        if not full.startswith(end_text) or start > len(end_text):
            raise InvalidInputError(f"{where}: the chat template rewrites earlier turns; cannot mask labels")
        end = len(end_text.rstrip())
        spans.append((start, end))
    ids, labels, pos = [], [], 0
    for start, end in spans:
        prompt = tokenizer(full[pos:start], add_special_tokens=False)["input_ids"] if start > pos else []
        answer = tokenizer(full[start:end], add_special_tokens=False)["input_ids"]
        ids += prompt + answer
        labels += [IGNORE] * len(prompt) + answer
        pos = end
    tail = tokenizer(full[pos:], add_special_tokens=False)["input_ids"] if pos < len(full) else []
    ids += tail
    labels += [IGNORE] * len(tail)
    cut = int(len(ids) > seq_len)
    ids, labels = ids[:seq_len], labels[:seq_len]
    if all(x == IGNORE for x in labels):
        return None, cut
    return Example(tuple(ids), tuple(labels)), cut
