"""The tables (SQLAlchemy 2 declarative mapping): audited requests, API keys, web sessions, conversations,
the review queue, and the applications' tables (the support desk's customers, conversations and messages,
used through ``clearlm.apps.support``).

A change here needs a migration in ``store/migrations/versions`` (``tests/store/test_migrations.py``
checks that the two agree).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AuditRow(Base):
    """One request, written once when it ends (completed, failed, refused or cancelled), appended to its
    tenant's hash chain: ``hash`` = SHA-256 of the record's content, its ``chain_seq`` and ``prev_hash``,
    computed as ``hash_version`` says (``store.chain``: 1 before signed heads, 2 since).

    Free-text values a caller controls (endpoint, model, finish_reason) are unbounded ``Text``, so no
    value is too long for its column and no record is lost to one."""

    __tablename__ = "audit_records"
    __table_args__ = (UniqueConstraint("tenant", "chain_seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), default="default", index=True)
    chain_seq: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    hash_version: Mapped[int] = mapped_column(Integer, server_default="1")
    request_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(32), index=True)
    endpoint: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    prompt: Mapped[object | None] = mapped_column(JSON)  # text, or a list of {"role", "content"}
    output: Mapped[object | None] = mapped_column(JSON)  # text, or one text per choice
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float)
    finish_reason: Mapped[str | None] = mapped_column(Text)  # one per choice, comma-separated
    status_code: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    governance: Mapped[dict | None] = mapped_column(JSON)


class KeyRow(Base):
    """An API key: only its SHA-256 is stored, and the first characters to recognise it by."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    policy: Mapped[str | None] = mapped_column(Text)  # a policy file for this key's requests
    tenant: Mapped[str] = mapped_column(String(64), default="default")  # whose audit chain its requests join
    scopes: Mapped[str] = mapped_column(
        String(64), default="user", server_default="user"
    )  # space-separated: admin, user


class ChainHead(Base):
    """The last record of each tenant's chain (locked while a record is appended), signed with the key
    outside the database (``signature``: Ed25519 in hex over ``store.chain.head_message``; None only for a
    head no key could sign)."""

    __tablename__ = "audit_chain_heads"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    chain_seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(Text)


class Checkpoint(Base):
    """A signed statement that a tenant's records up to ``upto_seq`` (ending in ``upto_hash``) were pruned
    under the retention setting; the chain goes on verifying from it."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    upto_seq: Mapped[int] = mapped_column(Integer)
    upto_hash: Mapped[str] = mapped_column(String(64))
    pruned: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    public_key: Mapped[str] = mapped_column(Text)  # Ed25519, raw bytes in hex
    signature: Mapped[str] = mapped_column(Text)  # hex
    version: Mapped[int] = mapped_column(Integer, server_default="1")  # of the signed message (store.chain)


class WebSession(Base):
    """A web UI sign-in: the browser holds a random secret in a cookie, the database its SHA-256 (``id``).
    ``api_key_id`` is None for a session of a server with open access. ``csrf`` is the token the browser
    must send back (``X-CSRF-Token``) with every state-changing request made with the cookie."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_key_id: Mapped[str | None] = mapped_column(String(32), index=True)
    tenant: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(64))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ConversationRow(Base):
    """A chat conversation of one user (``owner``: the API key's id, or ``local`` with open access) of one
    tenant. ``settings``: model, system_prompt, temperature, max_tokens, knowledge_base."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class MessageRow(Base):
    """A message of a conversation, in ``position`` order. ``status``: complete, stopped (the user stopped
    the stream; the text so far is kept), refused, failed. ``meta``: the request id of the turn that made it,
    finish_reason, citations, the disclosure mark, governance findings, the review item holding it."""

    __tablename__ = "conversation_messages"
    # ids never reused on SQLite (a message dropped by an edit leaves its id unused): a page that still
    # shows an old id cannot reach a newer message through it
    __table_args__ = (UniqueConstraint("conversation_id", "position"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="complete")
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReviewRow(Base):
    """An item of the review queue: something the machine should not decide alone (a request the policy
    escalated; later a support hand-off, a grade awaiting a teacher), for a person of its tenant to decide.
    ``kind`` says which; ``payload`` holds what the reviewer needs to see; ``status`` is open, approved,
    answered or dismissed; ``decision`` holds the reviewer's answer or note, ``decided_by`` their key's id."""

    __tablename__ = "review_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="open")
    title: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[dict | None] = mapped_column(JSON)


class CustomerRow(Base):
    """A customer of a tenant's desk. ``language``: ISO 639-1 (``en``); ``attributes``: what the desk
    defines (plan, country, order count, ...), JSON."""

    __tablename__ = "support_customers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SupportConversationRow(Base):
    """A conversation of one customer with the desk. ``status``: open, handed_off, closed;
    ``flow_state``: the dialog flow's state (``FlowState.to_json()``), or None outside a flow."""

    __tablename__ = "support_conversations"
    __table_args__ = (  # a customer's history, read on every turn (apps/support/memory.py; migration 0008)
        Index("ix_support_conversations_customer_history", "tenant", "customer_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("support_customers.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), index=True, default="open")
    flow_state: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    signals: Mapped[dict | None] = mapped_column(JSON)  # the hand-off rules' (apps/support/triggers.py)
    csat_score: Mapped[int | None] = mapped_column(Integer)  # the survey at close, 1-5 (apps/support/csat.py)
    csat_comment: Mapped[str | None] = mapped_column(Text)
    csat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SupportMessageRow(Base):
    """A message of a support conversation, in ``id`` order. ``role``: customer, assistant, agent,
    system; ``language``: ISO 639-1 of ``text``, or None when unknown; ``withheld``: the input policy
    blocked its turn, so it never enters a model context again (migration 0009); ``original``: an agent
    reply translated for the customer keeps what the agent wrote, for the desk only: ``{"text",
    "language", "engine"}`` (migration 0015)."""

    __tablename__ = "support_messages"
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused: they order the messages

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("support_conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    original: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class LearnerRow(Base):
    """A learner of a tenant's classroom (``apps/classroom/tutor.py``): ``external_id`` is the name the
    caller knows them by (a user name, an LMS id), unique within the tenant (migration 0010)."""

    __tablename__ = "classroom_learners"
    __table_args__ = (UniqueConstraint("tenant", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    external_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AttemptRow(Base):
    """One answer of a learner to a course's item: ``correct`` as the item's answer check judged it,
    ``hints_used`` (0 = none), ``seconds`` it took (None if unknown). The log that BKT is fitted from."""

    __tablename__ = "classroom_attempts"
    __table_args__ = (Index("ix_classroom_attempts_learner", "learner_id", "course", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("classroom_learners.id", ondelete="CASCADE"))
    course: Mapped[str] = mapped_column(String(64), index=True)
    item: Mapped[str] = mapped_column(String(64))
    answer: Mapped[str] = mapped_column(Text)
    correct: Mapped[bool] = mapped_column(Boolean)
    hints_used: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MasteryRow(Base):
    """A learner's P(mastery) of one skill of a course (Bayesian Knowledge Tracing), after ``attempts``
    attempts at items that exercise it."""

    __tablename__ = "classroom_mastery"

    learner_id: Mapped[int] = mapped_column(
        ForeignKey("classroom_learners.id", ondelete="CASCADE"), primary_key=True
    )
    course: Mapped[str] = mapped_column(String(64), primary_key=True)
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)
    p_mastery: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReviewCardRow(Base):
    """A learner's FSRS card for one item (``card``: ``fsrs.Card.to_dict()``), due for review at ``due``."""

    __tablename__ = "classroom_cards"
    __table_args__ = (Index("ix_classroom_cards_due", "learner_id", "course", "due"),)

    learner_id: Mapped[int] = mapped_column(
        ForeignKey("classroom_learners.id", ondelete="CASCADE"), primary_key=True
    )
    course: Mapped[str] = mapped_column(String(64), primary_key=True)
    item: Mapped[str] = mapped_column(String(64), primary_key=True)
    card: Mapped[dict] = mapped_column(JSON)
    due: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SkillParamsRow(Base):
    """A skill's BKT parameters fitted (pyBKT) from a tenant's logged attempts: ``prior``, ``learn``,
    ``guess``, ``slip`` (probabilities), over ``n_attempts`` attempts."""

    __tablename__ = "classroom_skill_params"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    course: Mapped[str] = mapped_column(String(64), primary_key=True)
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)
    prior: Mapped[float] = mapped_column(Float)
    learn: Mapped[float] = mapped_column(Float)
    guess: Mapped[float] = mapped_column(Float)
    slip: Mapped[float] = mapped_column(Float)
    n_attempts: Mapped[int] = mapped_column(Integer)
    fitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GradeRow(Base):
    """A graded answer (``apps/classroom/gradebook.py``, migration 0011): the ``answer`` as the policy
    stores text, the grader's ``score`` (0-2) and ``confidence``, the Grade's JSON (``grade``: criteria,
    evidence, findings, review reasons), ``status`` (released, in_review, overridden, accepted), the
    teacher's ``final_score`` and ``decision`` once decided. One row per (tenant, rubric, version, answer)."""

    __tablename__ = "classroom_grades"
    __table_args__ = (
        UniqueConstraint("tenant", "rubric_id", "rubric_version", "answer_id"),
        Index("ix_classroom_grades_rubric", "tenant", "rubric_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    rubric_id: Mapped[str] = mapped_column(String(64))
    rubric_version: Mapped[int] = mapped_column(Integer)
    answer_id: Mapped[str] = mapped_column(String(128))
    learner: Mapped[str] = mapped_column(String(128))
    answer: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer)
    final_score: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    grade: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128))
    grading_id: Mapped[str] = mapped_column(String(64))
    review_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision: Mapped[dict | None] = mapped_column(JSON)


class QuizRunRow(Base):
    """One quiz generation (``apps/classroom/quiz.py``, migration 0012): the knowledge base and topic
    asked, how many questions were asked for, how many passages were tried, how many questions were kept,
    and ``dropped`` ({reason: count}: invalid output, unsupported key, answer in the question, duplicate)."""

    __tablename__ = "classroom_quiz_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    kb: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str | None] = mapped_column(Text)
    requested: Mapped[int] = mapped_column(Integer)
    tried: Mapped[int] = mapped_column(Integer)
    kept: Mapped[int] = mapped_column(Integer)
    dropped: Mapped[dict] = mapped_column(JSON)
    model: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QuizQuestionRow(Base):
    """A generated quiz question (``apps/classroom/quiz_store.py``, migration 0012): the question, its
    answer key, the rubric (JSON of a ``Rubric``), the citation of the passage it came from (document,
    chunk id, quoted sentence), ``status`` (pending, approved, rejected) and the teacher's decision."""

    __tablename__ = "classroom_quiz_questions"
    __table_args__ = (Index("ix_classroom_quiz_questions_status", "tenant", "status", "kb"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(ForeignKey("classroom_quiz_runs.id", ondelete="CASCADE"))
    kb: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    rubric: Mapped[dict] = mapped_column(JSON)
    citation: Mapped[dict] = mapped_column(JSON)
    support: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128))
    review_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision: Mapped[dict | None] = mapped_column(JSON)


# Tables kept in their own modules, imported here so that Base.metadata holds them.
from clearlm.store import classroom_chat_tables  # noqa: E402, F401, I001
from clearlm.store import studio_tables  # noqa: E402, F401
