"""``clearlm serve``: the OpenAI-compatible HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from clearlm.cli.audit import RETENTION_DAYS
from clearlm.cli.common import DB, err_console, load
from clearlm.cli.generate import BACKEND, MODEL
from clearlm.errors import InvalidInputError
from clearlm.models import resolve_backend

# Sequences decoded together by default on an engine that batches: on the 2-core benchmark machine,
# llama.cpp's aggregate speed grows about 2.5x from 1 to 8 (benchmarks/bench_server.py).
DEFAULT_SLOTS = 8


def serve(
    model: str = MODEL,
    backend: str = BACKEND,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="address to listen on (0.0.0.0 for every interface)"
    ),
    port: int = typer.Option(8000, "--port", "-p", help="TCP port"),
    db: str = DB,
    max_active: int = typer.Option(
        None,
        "--max-active",
        help="generations at once (llamacpp: decoded together, default 8; torch: one runs, others wait, "
        "default 1)",
    ),
    max_waiting: int = typer.Option(32, "--max-waiting", help="requests queued beyond those (then 429)"),
    max_tokens: int = typer.Option(1024, "--default-max-tokens", help="max_tokens when a request gives none"),
    policy: str = typer.Option(None, "--policy", help="a YAML governance policy applied to every request"),
    kb_db: str = typer.Option(
        None,
        "--kb-db",
        help="PostgreSQL URL of the knowledge bases (default: the embedded ones under $CLEARLM_HOME)",
    ),
    retention_days: int = typer.Option(
        RETENTION_DAYS, "--retention-days", help="prune audit records older than this at start (0: keep all)"
    ),
    threads: int = typer.Option(None, "--threads", help="llamacpp: CPU threads (default: one per core)"),
    engine_url: str = typer.Option(
        None, "--engine-url", help="vllm: use the vLLM server at this URL instead of starting one"
    ),
    replicas: int = typer.Option(
        0, "--replicas", help="serve from this many replicas of --backend on a Ray cluster (0: in-process)"
    ),
    ray_address: str = typer.Option(
        None,
        "--ray-address",
        help="with --replicas: the Ray cluster (HEAD:6379, or auto; default: a local Ray)",
    ),
    adapter: list[str] = typer.Option(
        None,
        "--adapter",
        help="a LoRA adapter (clearlm adapters list) served beside the base as MODEL:ADAPTER (torch or vllm); "
        "repeat for more",
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error"),
    support_desk: str = typer.Option(
        None, "--support-desk", help="a support desk folder: flows/*.yaml and tools.yaml (examples/support)"
    ),
    support_origin: list[str] = typer.Option(
        None,
        "--support-origin",
        help="a web origin (https://shop.example, or *) whose pages may embed the support chat widget "
        "(CORS on /v1/support); repeat for more",
    ),
) -> None:
    """Serve a model over the OpenAI API (chat, completions, embeddings) plus /v1/explain, with every
    request audited to the database. Logs are JSON lines on stderr."""
    import uvicorn

    from clearlm.server import ServerConfig, ServerState, create_app, logs
    from clearlm.store import Database

    if not 0 < port < 65536:
        raise InvalidInputError(f"--port must be between 1 and 65535, got {port}")
    backend = resolve_backend(model, backend)
    if max_active is None:
        max_active = 1 if backend == "torch" else DEFAULT_SLOTS
    if max_active < 1 or max_waiting < 0 or max_tokens < 1:
        raise InvalidInputError("--max-active and --default-max-tokens must be >= 1, --max-waiting >= 0")
    config = ServerConfig(
        model=model,
        backend=backend,
        db_url=db,
        max_active=max_active,
        max_waiting=max_waiting,
        default_max_tokens=max_tokens,
        policy=policy,
        kb_url=kb_db,
        support_desk=support_desk,
        support_origins=tuple(support_origin or ()),
    )
    for origin in support_origin or ():  # a bad origin fails here, before the model loads
        from clearlm.server.support_channels import check_origin

        check_origin(origin)
    if support_desk is not None:  # a bad flow, tools or webhooks file fails here, before the model loads
        from clearlm.apps.support import load_desk
        from clearlm.apps.support.triggers import load_rules
        from clearlm.apps.support.webhooks import load_webhooks

        load_desk(support_desk)
        load_rules(support_desk)
        load_webhooks(support_desk)
    if policy is not None:  # a bad policy fails here, before the model loads
        from clearlm.govern import load_policy

        load_policy(policy)
    database = Database(db)  # a bad URL fails here, before the model loads
    if retention_days > 0:
        from clearlm.store import AuditLog

        AuditLog(database).prune(datetime.now(UTC) - timedelta(days=retention_days))
    lora = {}
    if adapter and (backend not in ("torch", "vllm") or replicas):
        raise InvalidInputError("--adapter needs the torch or vllm backend (without --replicas)")
    if adapter and backend == "vllm":  # vLLM applies them itself (multi-LoRA): checked before it starts
        from clearlm.tune.lora_modules import lora_modules

        lora = {"lora_modules": lora_modules(model, adapter)}
    served = load(
        model,
        backend,
        slots=max_active,
        threads=threads,
        engine_url=engine_url,
        replicas=replicas,
        ray_address=ray_address,
        **lora,
    )
    if adapter:  # LoRA adapters over the base, chosen per request by its model name (clearlm.tune.router)
        from clearlm.tune.router import AdapterRouter

        served = AdapterRouter(served, adapter, lora.get("lora_modules"))
    state = ServerState(config, backend=served, db=database)
    logs.configure(log_level)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    engine = f"{backend}, {replicas} replicas on Ray" if replicas else backend
    err_console.print(f"[dim]serving[/] {model} [dim]({engine}, {max_active} at once)[/]")
    err_console.print(f"  web UI: [bold]http://{shown}:{port}/[/]" + _sign_in_hint(database))
    err_console.print(f"  API:    http://{shown}:{port}/v1  [dim](OpenAI-compatible; docs at /docs)[/]")
    try:
        uvicorn.run(
            create_app(state), host=host, port=port, log_config=None, access_log=False, log_level=log_level
        )
    finally:
        state.close()


def _sign_in_hint(database) -> str:
    from clearlm.store import ApiKeys

    if ApiKeys(database).any():
        return "  [dim](sign in with an API key: clearlm keys create NAME --scope admin)[/]"
    return "  [dim](open access: no API keys exist)[/]"
