"""What one running server holds: its configuration, the model, the database, admission and metrics."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass

from clearlm.govern.policy import Policy, load_policy
from clearlm.knowledge.index import IndexStore, open_store
from clearlm.models import DEFAULT_MODEL, load_backend
from clearlm.models.embeddings import DEFAULT_EMBEDDING_MODEL, Embedder, load_embedder
from clearlm.server.gate import Gate
from clearlm.server.metrics import Metrics
from clearlm.store import ApiKeys, AuditLog, Database
from clearlm.store.sessions import WebSessions

SELECTED = object()  # explainer(): the adapter the current request selected


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Fields: model and backend to serve; db_url (None = the SQLite file under $CLEARLM_HOME);
    max_active generations at once and max_waiting in the queue (past both: 429); default_max_tokens
    when a request names none (capped by what is left of the context); retry_after (seconds, in 429s);
    embedding_model for /v1/embeddings; policy: the YAML policy file applied to every request (an API
    key created with its own policy uses that one instead); kb_url: None for the embedded knowledge
    bases under $CLEARLM_HOME/knowledge, or a PostgreSQL URL (pgvector); files_dir: where documents
    uploaded to /v1/kb are kept (default $CLEARLM_HOME/uploads); support_desk: the support desk's folder
    (``flows/*.yaml`` and ``tools.yaml``, see ``clearlm.apps.support.tools``; None: no flows or tools);
    support_origins: the web origins (``https://shop.example``, or ``*``) whose pages may call the support
    routes with the chat widget (CORS; empty: the server's own origin only)."""

    model: str = DEFAULT_MODEL
    backend: str = "auto"
    db_url: str | None = None
    max_active: int = 1
    max_waiting: int = 32
    default_max_tokens: int = 1024
    retry_after: int = 1
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    policy: str | None = None
    kb_url: str | None = None
    files_dir: str | None = None
    support_desk: str | None = None
    support_origins: tuple[str, ...] = ()


class ServerState:
    """The server's resources. ``backend``, ``embedder``, ``db`` and ``explainer`` (a torch twin of a model
    served on another engine) may be passed in ready-made; otherwise they are opened from the config (the
    embedder and the explainer on first use)."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        backend=None,
        embedder: Embedder | None = None,
        db: Database | None = None,
        explainer=None,
    ) -> None:
        self.config = config
        self.db = db if db is not None else Database(config.db_url)
        self.backend = backend if backend is not None else load_backend(config.model, config.backend)
        self.created = int(time.time())
        self.audit = AuditLog(self.db)
        self.keys = ApiKeys(self.db)
        self.sessions = WebSessions(self.db)
        self.gate = Gate(config.max_active, config.max_waiting, config.retry_after)
        self.metrics = Metrics()
        self._embedder = embedder
        self._explainer = explainer
        self._twin_adapters = None  # the explainer's adapters, when adapters are served on another engine
        self._twin_views: dict = {}
        self._load_lock = threading.Lock()
        self._policies: dict[str, Policy] = {}
        self._kb_store: IndexStore | None = None  # one per server (so one connection pool for --kb-db)
        self._kb_lock = threading.Lock()
        self.policy: Policy | None = None
        self.policy = self.policy_for(config.policy)

    @property
    def model_id(self) -> str:
        """The served model's name (with adapters: the one the current request selected)."""
        return self.backend.name

    def policy_for(self, path: str | None) -> Policy | None:
        """The loaded policy of a file (loaded once, its scanners built at once so errors show early).

        Raises:
            InvalidInputError: an unreadable or invalid policy file.
        """
        if path is None:
            return self.policy
        with self._load_lock:
            policy = self._policies.get(path)
        if policy is None:
            policy = load_policy(path, embedder_factory=self.embedder)
            policy.build_all()
            with self._load_lock:
                self._policies[path] = policy
        return policy

    def use_policy(self, path: str, policy: Policy) -> None:
        """Make ``policy`` (just written to ``path``) the server's policy from the next request on: it
        replaces what was cached for that path (every key naming the file gets it too)."""
        with self._load_lock:
            self._policies[path] = policy
            self.config = dataclasses.replace(self.config, policy=path)
            self.policy = policy

    def embedder(self) -> Embedder:
        """The embedding model (loaded on first use). Raises ModelNotFoundError if it is not installed."""
        with self._load_lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.config.embedding_model)
            return self._embedder

    def explainer(self, adapter: str | None | object = SELECTED):
        """A torch backend of the served model, for explanations: the served one if it is torch, else a
        torch twin loaded once. Over LoRA adapters served on another engine (vLLM's multi-LoRA,
        ``tune.router.AdapterRouter``), the twin's view of ``adapter`` (default: the one the current request
        selected; None: the base), the adapter loaded into the twin with PEFT on first use
        (``tune.serve.AdapterSet``, which checks the card against the twin's weights).

        Raises:
            ModelNotFoundError: an adapter this server does not serve. AdapterMismatchError.
        """
        routed = getattr(self.backend, "views", None) is not None
        if self.backend.kind == "torch":  # the served backend (a router: the request's view, or adapter's)
            return self.backend if adapter is SELECTED or not routed else self.backend.view(adapter)
        if adapter is SELECTED:
            adapter = self.backend.current_adapter if routed else None
        with self._load_lock:
            if self._explainer is None:
                self._explainer = load_backend(self.config.model, "torch")
            if not routed:
                return self._explainer
            from clearlm.tune.serve import AdapterSet

            self.backend.view(adapter)  # served here, or ModelNotFoundError
            if self._twin_adapters is None:  # wraps the twin in place: use it only through its views now
                self._twin_adapters = AdapterSet(self._explainer)
            if adapter not in self._twin_views:
                twins = self._twin_adapters
                folder = self.backend.folders.get(adapter)  # the folder vLLM serves, where known
                self._twin_views[adapter] = (
                    twins.view(None) if adapter is None else twins.load(adapter, folder)
                )
            return self._twin_views[adapter]

    def kb_store(self, tenant: str) -> IndexStore:
        """The knowledge bases' store as ``tenant`` sees it: opened once (for PostgreSQL, one engine and
        connection pool for every request and tenant), a view per tenant.

        Raises:
            InvalidInputError: the --kb-db server cannot be reached (tried again on the next request).
        """
        with self._kb_lock:
            if self._kb_store is None:
                self._kb_store = open_store(self.config.kb_url)
            return self._kb_store.for_tenant(tenant)

    def close(self) -> None:
        self.db.close()
        if self._kb_store is not None:
            self._kb_store.close()
