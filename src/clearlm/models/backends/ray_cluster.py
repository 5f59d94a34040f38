"""Joining a Ray cluster (or starting a one-machine Ray) for engine replicas and batch jobs.

A cluster is started outside clearlm with Ray's own commands (``ray start --head`` on one machine,
``ray start --address HEAD:6379`` on the others); clearlm's processes join it as Ray drivers. Every machine
needs the same clearlm (and model cache, or the model's packages) installed: the replicas and batch tasks
load their models where they run.
"""

from __future__ import annotations

from clearlm.errors import BackendUnavailableError

NAMESPACE = "clearlm"


def import_ray():
    """The ``ray`` module.

    Raises:
        BackendUnavailableError: Ray is not installed.
    """
    import logging

    factory = logging.getLogRecordFactory()
    try:
        import ray
    except ImportError:
        raise BackendUnavailableError(
            "Ray is not installed: pip install 'clearlm[ray]' (on every machine of the cluster)"
        ) from None
    # Importing ray adds its own field (_ray_timestamp_ns) to every log record: the server's JSON logs keep
    # theirs.
    logging.setLogRecordFactory(factory)
    return ray


def connect(address: str | None = None, *, num_cpus: int | None = None):
    """Join the Ray cluster at ``address`` (``HOST:PORT`` of the head's GCS, or ``"auto"`` for the cluster
    this machine belongs to), once per process; with ``address`` None, a cluster named by ``RAY_ADDRESS``
    or else a new one-machine Ray (``num_cpus``: the CPUs it offers; None = all). Returns the ``ray``
    module.

    Raises:
        BackendUnavailableError: Ray missing, or no cluster answers at ``address``.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(
            address=address,
            namespace=NAMESPACE,
            num_cpus=num_cpus if address is None else None,
            include_dashboard=False,
            log_to_driver=False,  # replicas' own logs stay in the cluster's log folder
            configure_logging=False,
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise BackendUnavailableError(
            f"cannot join the Ray cluster at {address or 'RAY_ADDRESS'}: {str(exc).splitlines()[0]}; "
            "start one with `ray start --head` and pass its address (HOST:6379) to --ray-address"
        ) from None
    return ray


def unwrap(exc: BaseException) -> BaseException:
    """The clearlm error a Ray task or actor raised (Ray wraps it in a ``RayTaskError``), else ``exc``."""
    from clearlm.errors import ClearlmError

    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, ClearlmError) else exc
