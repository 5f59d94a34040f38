"""What an explanation of a served LoRA adapter needs (``/v1/explain``, ``/v1/adapters/{name}/compare``)."""

from __future__ import annotations

from clearlm.errors import BackendUnavailableError


def check_adapter_explainable(backend, adapter: str | None = None) -> None:
    """Raises BackendUnavailableError when the request's model (``adapter``, else the one it selected) is a
    LoRA adapter this server runs on vLLM: explanations run on a torch twin of the base, which does not carry
    the adapter, so the explanation would silently be the base's."""
    views = getattr(backend, "views", None)
    if views is None or backend.kind == "torch":
        return
    view = views.get(adapter) if adapter is not None else backend.current
    if view is None or view is views[None]:
        return
    raise BackendUnavailableError(
        f"explanations of the LoRA adapter {view.name!r} need the torch backend, and this server runs it on "
        f"{backend.kind}: serve it with `clearlm serve --backend torch --adapter NAME`, or explain it with "
        "`clearlm explain --adapter NAME`"
    )
