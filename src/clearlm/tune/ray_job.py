"""A tuning run as a Ray task on a cluster: the driver ships the data, a worker trains and measures with
:func:`clearlm.tune.tune` where it runs, and the driver writes the adapter it sends back.

The task gets the data's bytes (a file, or every file under a folder), the settings and the policy's YAML,
so the worker needs only clearlm and the base model (a catalog model or hub id; a folder must exist at the
same path on the worker). It trains under a temporary adapter name in the worker's own
``$CLEARLM_HOME/adapters`` and removes it; the driver then stores the files atomically under the real name
(:func:`clearlm.tune.adapters.write_adapter`) with the card's name and data paths put back as the driver sees
them. The seed makes the run repeatable, so a run on the cluster gives the losses a local run gives.

An evaluation job (:func:`evaluate_on_ray`) ships a stored adapter's files and the data the same way; the
worker measures it (:func:`clearlm.tune.evaluation.evaluate_adapter`) and sends the figures back.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path

from clearlm.errors import InvalidInputError
from clearlm.tune import adapters
from clearlm.tune.card import card_markdown
from clearlm.tune.config import TuneConfig
from clearlm.tune.evaluation import Evaluation
from clearlm.tune.run import TuneResult

MAX_DATA_BYTES = 256 << 20  # shipped through Ray's object store


def tune_on_ray(
    name: str,
    base: str,
    data: str | Path,
    config: TuneConfig | None = None,
    *,
    address: str | None,
    eval_data: str | Path | None = None,
    general_data: str | Path | None = None,
    pii: str = "redact",
    policy_yaml: str | None = None,
    threads: int = 1,
    overwrite: bool = False,
) -> TuneResult:
    """Run :func:`clearlm.tune.tune` of adapter ``name`` on ``base`` (a model name or path the worker can
    load) as one Ray task on the cluster at ``address`` (``HOST:PORT``, "auto"; None: ``RAY_ADDRESS`` or a
    one-machine Ray), with ``threads`` CPUs; store the adapter here. ``policy_yaml``: a policy's text whose
    input stage screens the data (else ``pii``); ``eval_data``, ``general_data``: as for
    :func:`clearlm.tune.tune`. Returns the adapter's folder, card and report.

    Raises:
        InvalidInputError: bad name, existing adapter (without ``overwrite``), data missing or over 256 MB,
            and whatever the run raises on the worker (see :func:`clearlm.tune.tune`).
        BackendUnavailableError: Ray missing or no cluster at ``address``.
    """
    from clearlm.models.backends.ray_cluster import connect, unwrap

    adapters.check_name(name)
    if adapters.adapter_dir(name).exists() and not overwrite:
        raise adapters.AdapterExistsError(f"adapter {name!r} exists: choose another name, or remove it first")
    shipped = {"data": _pack(Path(data))}
    for key, path in (("eval", eval_data), ("general", general_data)):
        if path is not None:
            shipped[key] = _pack(Path(path))
    ray = connect(address)
    task = ray.remote(num_cpus=threads)(_run).options(max_retries=0)
    try:
        files, card, report = ray.get(
            task.remote(base, shipped, (config or TuneConfig()).to_dict(), pii, policy_yaml, threads)
        )
    except ray.exceptions.RayTaskError as exc:
        raise unwrap(exc) from None
    card["name"] = name
    _paths_here(card["data"]["sources"], {"data": data, "eval": eval_data})

    def write(folder: Path) -> None:
        for rel, blob in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(blob)
        (folder / adapters.CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
        (folder / "README.md").write_text(card_markdown({**card, "report": report}), encoding="utf-8")

    path = adapters.write_adapter(name, write, overwrite)
    return TuneResult(path, card, report)


def evaluate_on_ray(
    name: str,
    data: str | Path,
    *,
    address: str | None,
    base: str | None = None,
    general_data: str | Path | None = None,
    pii: str = "redact",
    policy_yaml: str | None = None,
    threads: int = 1,
) -> Evaluation:
    """Run :func:`clearlm.tune.evaluation.evaluate_adapter` of adapter ``name`` (stored here) as one Ray
    task on the cluster at ``address``: the task gets the adapter's files and the data's bytes, and loads
    ``base`` (default: the card's) where it runs. Arguments as for :func:`tune_on_ray`; nothing is stored.

    Raises:
        AdapterNotFoundError, InvalidInputError (data missing or over 256 MB), whatever the evaluation raises
        on the worker; BackendUnavailableError: Ray missing or no cluster at ``address``.
    """
    from clearlm.models.backends.ray_cluster import connect, unwrap

    card = adapters.read_card(name)
    shipped = {"adapter": _pack(adapters.adapter_dir(name)), "data": _pack(Path(data))}
    if general_data is not None:
        shipped["general"] = _pack(Path(general_data))
    ray = connect(address)
    task = ray.remote(num_cpus=threads)(_evaluate).options(max_retries=0)
    try:
        out = ray.get(task.remote(name, base or card["base"]["name"], shipped, pii, policy_yaml, threads))
    except ray.exceptions.RayTaskError as exc:
        raise unwrap(exc) from None
    _paths_here(out["data"]["sources"], {"data": data})
    return Evaluation(**{k: v for k, v in out.items() if k != "object"})


def _paths_here(sources: list[dict], roots: dict) -> None:
    """Put the paths of shipped files back as the driver knows them (``roots``: key -> the driver's path)."""
    for source in sources:
        for key, root in roots.items():
            mark = f"/{key}-shipped/"
            if root is not None and mark in source["path"]:
                here = Path(root).expanduser().resolve()
                source["path"] = str(here if here.is_file() else here / source["path"].split(mark, 1)[1])


def _pack(path: Path) -> tuple[str, dict[str, bytes]]:
    """``(kind, {relative path: bytes})`` of a file ("file") or every file under a folder ("dir")."""
    path = path.expanduser()
    if path.is_file():
        files, kind = {path.name: path.read_bytes()}, "file"
    elif path.is_dir():
        files = {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
        kind = "dir"
    else:
        raise InvalidInputError(f"no data at {path}: give a file or a folder")
    if sum(map(len, files.values())) > MAX_DATA_BYTES:
        raise InvalidInputError(f"{path} holds over 256 MB: put the data on the workers' machines instead")
    return kind, files


def _unpack(root: Path, key: str, packed: tuple[str, dict[str, bytes]]) -> Path:
    kind, files = packed
    folder = root / f"{key}-shipped"
    for rel, blob in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(blob)
    return folder / next(iter(files)) if kind == "file" else folder


def _run(base: str, shipped: dict, config: dict, pii: str, policy_yaml: str | None, threads: int):
    """The Ray task: tune under a temporary name, return ``(files, card, report)`` and remove the adapter."""
    import torch

    from clearlm.govern import parse_policy
    from clearlm.tune.run import tune

    torch.set_num_threads(threads)
    temporary = f"ray-{uuid.uuid4().hex[:16]}"
    root = Path(tempfile.mkdtemp(prefix="clearlm-tune-"))
    try:
        data = _unpack(root, "data", shipped["data"])
        eval_data, general = (
            _unpack(root, k, shipped[k]) if k in shipped else None for k in ("eval", "general")
        )
        policy = parse_policy(policy_yaml) if policy_yaml else None
        result = tune(
            temporary,
            base,
            data,
            TuneConfig(**config),
            eval_data=eval_data,
            general_data=general,
            pii=pii,
            policy=policy,
        )
        files = {
            str(p.relative_to(result.path)): p.read_bytes()
            for p in sorted(result.path.rglob("*"))
            if p.is_file() and p.name not in (adapters.CARD, "README.md")
        }
        return files, result.card, result.report
    finally:
        shutil.rmtree(adapters.adapter_dir(temporary), ignore_errors=True)
        shutil.rmtree(adapters.work_dir(temporary), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def _evaluate(name: str, base: str, shipped: dict, pii: str, policy_yaml: str | None, threads: int) -> dict:
    """The Ray task of :func:`evaluate_on_ray`: the evaluation as a dict."""
    import torch

    from clearlm.govern import parse_policy
    from clearlm.tune.evaluation import evaluate_adapter

    torch.set_num_threads(threads)
    root = Path(tempfile.mkdtemp(prefix="clearlm-evaluate-"))
    try:
        folder = _unpack(root, "adapter", shipped["adapter"])
        data = _unpack(root, "data", shipped["data"])
        general = _unpack(root, "general", shipped["general"]) if "general" in shipped else None
        policy = parse_policy(policy_yaml) if policy_yaml else None
        done = evaluate_adapter(
            name, data, base=base, general_data=general, pii=pii, policy=policy, folder=folder
        )
        return done.to_dict()
    finally:
        shutil.rmtree(root, ignore_errors=True)
