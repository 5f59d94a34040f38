"""The chat tutor (issue 16): a learner asks a question while practising and gets an answer from the
course's knowledge base with citations, never the answer of the item they are working on.

One question (:meth:`TutorChat.ask`):

1. One pipeline turn (``clearlm.pipeline``; audit endpoint ``classroom:tutor``): the question as the user
   message, :data:`INSTRUCTIONS` as the turn's instructions (the application's text, not scanned), and
   retrieval from the course's knowledge base (``Retrieval(kb, k, answer=course.knowledge_answer)``:
   ``extract`` quotes the passages' closest sentences, ``generate`` has the model write from them;
   ``clearlm.knowledge.answer`` numbers the passages and the citations are mapped by ``cite_turn``, no
   attribution). The turn is deferred so that the citations pass the output policy in the same record.
2. The leak check (:func:`leak`): the reply (citation brackets left out) and the text of every passage
   returned with it, against each open item's answer with ``Answer.given_away_by``, the check every hint
   of a course passes when it is loaded (the accepted answer as a phrase; for a number item any number
   of the same value: 3/4, 0.75, 6/8), and fractions in words ("three quarters"). The open items are
   the one the learner's page shows (``item_id``) and the one the tutor would present next (the
   server's own choice, so leaving ``item_id`` out does not lift the check).
3. A leaking reply is replaced by a hint-style nudge (:func:`nudge`: the item's next hint not yet seen,
   the hints being checked not to give the answer away), said as a forced target turn
   (``classroom:tutor_nudge``: audited and checked by the output policy; nothing generated). Its
   citations are dropped: their passages hold the answer too.
   (The check and the nudge are in ``tutor_leaks.py``.)
4. The turn is logged per learner (``classroom_chat_turns``, migration 0013): question and reply as the
   policy stores text, the citations shown, the item open, whether the reply was replaced.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

from clearlm.apps.classroom.items import Course
from clearlm.apps.classroom.tutor import Tutor
from clearlm.apps.classroom.tutor_leaks import NUDGE, NUDGE_NO_HINT, leak, nudge, spelled_fractions
from clearlm.errors import InvalidInputError
from clearlm.models.backends.base import SamplingParams
from clearlm.models.chat import Message
from clearlm.pipeline import Retrieval, TurnRequest, cite_turn, start_turn
from clearlm.store.audit import AuditRecord
from clearlm.store.classroom_chat_tables import ChatTurnRow
from clearlm.store.db import as_utc
from clearlm.store.tables import LearnerRow

MAX_QUESTION_CHARS = 2_000
MAX_HISTORY = 200
PASSAGES = 3  # passages retrieved per question (short course notes: three cover a topic)
MAX_NEW_TOKENS = 96
INSTRUCTIONS = (
    "You are a patient tutor for a course. Explain ideas and methods from the course notes in plain words, "
    "briefly. Never solve the learner's current exercise for them and never state its final answer: show "
    "the method on other numbers instead."
)


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One exchange with the tutor: ``question`` and ``reply`` (as shown to the learner; as stored when
    read back), ``citations`` (``CitedAnswer.to_dict()``, None when replaced or uncited), ``item_id``
    (the item open, None if none), ``leaked`` (the reply gave that item's answer away and was replaced),
    ``hint_index`` (the item hint the nudge gave, 0-based; None when not a nudge or no hint),
    ``request_ids`` (the audit records of its pipeline turns), ``created_at`` (UTC)."""

    id: str
    question: str
    reply: str
    citations: dict | None
    item_id: str | None
    leaked: bool
    knowledge_base: str
    model: str
    request_ids: list[str]
    created_at: datetime
    hint_index: int | None = None

    def to_dict(self) -> dict:
        out = {f: getattr(self, f) for f in self.__slots__}
        out["created_at"] = self.created_at.isoformat()
        return {"object": "classroom.chat_turn", **out}


@dataclass(slots=True)
class TutorChat:
    """The chat tutor of ``tutor.course`` (its ``knowledge_base``), asking ``backend`` through the
    pipeline under ``policy`` (None: none), recording to ``audit`` (None: not recorded). ``open_kb(tenant,
    name)`` opens a knowledge base as a context manager (default: ``KnowledgeBase.open`` in the default
    location); ``api_key_id`` is copied into every audit record."""

    tutor: Tutor
    backend: object
    audit: object | None = None
    policy: object | None = None
    open_kb: Callable | None = None
    api_key_id: str | None = None
    k: int = PASSAGES
    max_new_tokens: int = MAX_NEW_TOKENS
    _stored: Callable[[str], str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        policy = self.policy
        self._stored = (lambda text: text) if policy is None else policy.stored

    @property
    def course(self) -> Course:
        return self.tutor.course

    def ask(
        self, tenant: str, learner: str, question: str, item_id: str | None = None, hints_seen: int = 0
    ) -> ChatTurn:
        """Answer ``learner``'s ``question`` from the course's knowledge base, with citations, keeping the
        answers of the open items (``item_id``, the page's, and the tutor's next one) to the learner; log
        it. ``hints_seen``: hints of ``item_id`` the learner has seen (the nudge gives the next).

        Raises:
            InvalidInputError: the course names no knowledge base, an empty question or one over 2,000
                characters or with a NUL, an unknown item (CourseError), a bad learner id, a knowledge
                base with no documents. KnowledgeBaseNotFoundError (404): the course's knowledge base
                does not exist in ``tenant``. PolicyViolationError: the policy blocked the question.
        """
        name = self.course.knowledge_base
        if name is None:
            raise InvalidInputError(
                f"course {self.course.id!r} has no chat tutor: name a knowledge base in its file "
                "(knowledge_base: NAME) and build it (clearlm classroom kb COURSE_FILE DOCS...)"
            )
        if not question.strip():
            raise InvalidInputError("the question is empty: ask the tutor something")
        if len(question) > MAX_QUESTION_CHARS or "\x00" in question:
            raise InvalidInputError(
                f"a question is at most {MAX_QUESTION_CHARS:,} characters, without NUL characters"
            )
        shown = self.course.item(item_id) if item_id is not None else None
        upcoming = self.tutor.next_item(tenant, learner)
        open_items = [i for i in (shown, upcoming.item if upcoming else None) if i is not None]
        open_items = list({i.id: i for i in open_items}.values())

        with self._kb(tenant, name) as kb:
            reply, citations, finish, first = self._answer(tenant, kb, question)
        passages = [p["text"] for p in (citations or {}).get("passages", [])]
        found = leak(open_items, [reply, *passages])
        request_ids, hint_index = [first], None
        if found is not None:
            item = found[0]
            text, hint_index = nudge(item, hints_seen if item is shown else 0)
            reply, rid = self._say(tenant, text, question)
            request_ids.append(rid)
            citations = None
        elif citations is not None and not citations.get("citations") and not citations.get("passages"):
            citations = None
        turn = ChatTurn(
            id="cht_" + secrets.token_hex(8),
            question=question,
            reply=reply,
            citations=citations,
            item_id=shown.id if shown is not None else (open_items[0].id if open_items else None),
            leaked=found is not None,
            knowledge_base=name,
            model=self.backend.name,
            request_ids=request_ids,
            created_at=datetime.now(UTC),
            hint_index=hint_index,
        )
        self._log(tenant, learner, turn)
        return turn

    def history(self, tenant: str, learner: str, limit: int = 50) -> list[ChatTurn]:
        """``learner``'s turns with this course's tutor, oldest first, the newest ``limit`` (1-200)."""
        if not 1 <= limit <= MAX_HISTORY:
            raise InvalidInputError(f"limit is 1 to {MAX_HISTORY}, got {limit}")
        with self.tutor.db.session() as session:
            lid = session.scalar(
                select(LearnerRow.id).where(LearnerRow.tenant == tenant, LearnerRow.external_id == learner)
            )
            if lid is None:
                return []
            rows = session.scalars(
                select(ChatTurnRow)
                .where(ChatTurnRow.learner_id == lid, ChatTurnRow.course == self.course.id)
                .order_by(ChatTurnRow.created_at.desc(), ChatTurnRow.id.desc())
                .limit(limit)
            ).all()
        return [_turn(r) for r in reversed(rows)]

    # -- helpers --

    def _kb(self, tenant: str, name: str):
        if self.open_kb is not None:
            return self.open_kb(tenant, name)
        from clearlm.knowledge import KnowledgeBase

        return KnowledgeBase.open(name, tenant=tenant)

    def _record(self, tenant: str, kind: str) -> AuditRecord:
        return AuditRecord(
            request_id=f"tutor-{secrets.token_hex(10)}",
            created_at=datetime.now(UTC),
            endpoint=f"classroom:{kind}",
            api_key_id=self.api_key_id,
            tenant=tenant,
        )

    def _answer(self, tenant: str, kb, question: str) -> tuple[str, dict | None, str | None, str]:
        """(reply, citations dict or None, finish reason, request id) of the question's turn."""
        record = self._record(tenant, "tutor")
        request = TurnRequest(
            [Message("user", question)],
            SamplingParams(max_new_tokens=self.max_new_tokens, temperature=0.0),
            retrieval=Retrieval(kb, k=self.k, answer=self.course.knowledge_answer),
            origin={"classroom_course": self.course.id},
            instructions=INSTRUCTIONS,
        )
        turn = start_turn(self.backend, request, record, self.audit, self.policy, deferred=True)
        try:
            turn.run()
        except BaseException:
            turn.close(500, "the tutor's turn failed")
            raise
        choice = turn.choices[0]
        if turn.grounding is None:  # refused by the input policy: nothing retrieved, nothing to cite
            turn.close(200, None)
            return choice.text, None, choice.finish_reason, record.request_id
        cited = turn.settle(lambda: cite_turn(None, turn))
        return choice.text, cited.to_dict(), choice.finish_reason, record.request_id

    def _say(self, tenant: str, text: str, question: str) -> tuple[str, str]:
        """``text`` (the tutor's own words) as a forced target after the question; (text as returned,
        request id)."""
        record = self._record(tenant, "tutor_nudge")
        request = TurnRequest(
            [Message("user", question)],
            SamplingParams(max_new_tokens=1),
            target=text,
            origin={"classroom_course": self.course.id},
            screened=(1,),  # the target (index 1): the tutor's own words, not the learner's
        )
        turn = start_turn(self.backend, request, record, self.audit, self.policy).run()
        return turn.choices[0].text, record.request_id

    def _log(self, tenant: str, learner: str, turn: ChatTurn) -> None:
        with self.tutor.db.writing() as session:
            lid = self.tutor._learner(session, tenant, learner, create=True)
            session.add(
                ChatTurnRow(
                    id=turn.id,
                    learner_id=lid,
                    course=self.course.id,
                    item=turn.item_id,
                    question=self._stored(turn.question),
                    reply=self._stored(turn.reply),
                    citations=turn.citations,
                    leaked=turn.leaked,
                    knowledge_base=turn.knowledge_base,
                    model=turn.model,
                    request_ids=list(turn.request_ids),
                    created_at=turn.created_at,
                )
            )


def _turn(row: ChatTurnRow) -> ChatTurn:
    return ChatTurn(
        id=row.id,
        question=row.question,
        reply=row.reply,
        citations=row.citations,
        item_id=row.item,
        leaked=row.leaked,
        knowledge_base=row.knowledge_base,
        model=row.model,
        request_ids=list(row.request_ids),
        created_at=as_utc(row.created_at),
    )


def build_knowledge_base(course: Course, paths: list, *, tenant: str = "default", url: str | None = None):
    """Create the course's knowledge base (``course.knowledge_base``) in ``tenant`` if it does not exist,
    and add ``paths`` (files and folders: .md, .txt, .html, .pdf) to it. Returns the ``AddReport``.

    Raises:
        InvalidInputError: the course names no knowledge base, no paths. As ``KnowledgeBase.create`` and
            ``add`` otherwise.
    """
    from clearlm.knowledge import KnowledgeBase, KnowledgeBaseNotFoundError

    if course.knowledge_base is None:
        raise InvalidInputError(
            f"course {course.id!r} names no knowledge base: add knowledge_base: NAME to its file"
        )
    try:
        kb = KnowledgeBase.open(course.knowledge_base, url=url, tenant=tenant)
    except KnowledgeBaseNotFoundError:
        kb = KnowledgeBase.create(course.knowledge_base, url=url, tenant=tenant)
    with kb:
        return kb.add(paths)


__all__ = [
    "NUDGE",
    "NUDGE_NO_HINT",
    "ChatTurn",
    "TutorChat",
    "build_knowledge_base",
    "leak",
    "nudge",
    "spelled_fractions",
]
