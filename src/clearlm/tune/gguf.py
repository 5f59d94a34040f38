"""GGUF, llama.cpp's format: convert a transformers checkpoint with llama.cpp's own converter.

The converter is ``convert_hf_to_gguf.py`` (with its ``conversion/`` package and ``gguf-py/``) from the
llama.cpp that llama-cpp-python 0.3.36 vendors, the same llama.cpp as the llamacpp backend's, so what it
writes is what that backend reads. It is plain Python (no build): :func:`install_converter` (``make
gguf-converter``) takes those files from llama-cpp-python's source distribution into
:func:`default_converter_dir`; ``$CLEARLM_GGUF_CONVERTER`` names another llama.cpp folder. It runs as a
subprocess of the current Python (its imports, torch, numpy, transformers, tokenizers, pyyaml, tqdm and
jinja2, are all clearlm's own dependencies; sentencepiece only for SentencePiece vocabularies), with its
``gguf-py`` first on ``PYTHONPATH`` (the installed ``gguf`` package may be another version).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.paths import clearlm_home

CONVERTER_ENV = "CLEARLM_GGUF_CONVERTER"
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
SDIST_ROOT = "llama_cpp_python-0.3.36/vendor/llama.cpp/"
SCRIPT = "convert_hf_to_gguf.py"
# What the converter needs of llama.cpp's tree (2 MB of Python), and its license.
MEMBERS = (SCRIPT, "conversion/", "gguf-py/", "LICENSE")
OUTTYPES = ("f32", "f16", "bf16", "q8_0")
HINT = (
    f"run `make gguf-converter`, or set {CONVERTER_ENV} to a llama.cpp folder holding {SCRIPT} and gguf-py/"
)


class GgufConversionError(InvalidInputError):
    """llama.cpp's converter refused or failed on the checkpoint (an architecture or tokenizer it does not
    know, for instance)."""


def default_converter_dir() -> Path:
    """Where ``make gguf-converter`` puts the converter: ``$CLEARLM_HOME/engines/llama.cpp``."""
    return clearlm_home() / "engines" / "llama.cpp"


def find_converter() -> Path:
    """The llama.cpp folder holding ``convert_hf_to_gguf.py``: ``$CLEARLM_GGUF_CONVERTER`` (the folder or the
    script itself), else :func:`default_converter_dir`.

    Raises:
        BackendUnavailableError: no converter there (the message names ``make gguf-converter``).
    """
    env = os.environ.get(CONVERTER_ENV)
    folder = Path(env).expanduser() if env else default_converter_dir()
    if folder.name == SCRIPT:
        folder = folder.parent
    if not (folder / SCRIPT).is_file() or not (folder / "gguf-py" / "gguf").is_dir():
        where = f"{CONVERTER_ENV}={env}" if env else str(folder)
        raise BackendUnavailableError(f"llama.cpp's GGUF converter is not at {where}: {HINT}")
    return folder


def install_converter(dest: Path | None = None) -> Path:
    """Fetch llama-cpp-python 0.3.36's source distribution with pip (its index or cache) and unpack the
    converter's files into ``dest`` (default :func:`default_converter_dir`), through a temporary folder
    renamed into place. A no-op when a converter is already there. Returns the folder.

    Raises:
        BackendUnavailableError: pip could not fetch it (its last lines are in the message).
    """
    dest = Path(dest) if dest is not None else default_converter_dir()
    if (dest / SCRIPT).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".llama.cpp-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps"]
        done = subprocess.run(
            [*cmd, "--no-binary", ":all:", LLAMA_CPP_PYTHON, "-d", tmp], capture_output=True, text=True
        )
        sdists = sorted(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if done.returncode != 0 or not sdists:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
            raise BackendUnavailableError(f"pip could not fetch {LLAMA_CPP_PYTHON}'s source:\n{tail}")
        unpacked = Path(tmp) / "llama.cpp"
        with tarfile.open(sdists[0]) as archive:
            for member in archive.getmembers():
                rel = member.name.removeprefix(SDIST_ROOT)
                if rel != member.name and any(rel == m or rel.startswith(m) for m in MEMBERS if m):
                    member.name = rel
                    archive.extract(member, unpacked, filter="data")
        os.replace(unpacked, dest)
    return dest


def convert(checkpoint: Path, dest: Path, outtype: str = "f16", timeout: float = 3600) -> Path:
    """Write ``dest`` (one .gguf file) from the transformers ``checkpoint`` folder with llama.cpp's
    converter, through a temporary file beside ``dest`` renamed into place: a failed conversion leaves
    nothing. ``outtype``: the tensors' type, one of :data:`OUTTYPES` (norms and biases stay float32, as
    llama.cpp's converter does). ``timeout`` in seconds.

    Raises:
        InvalidInputError: an unknown ``outtype``. BackendUnavailableError: no converter (see
            :func:`find_converter`). GgufConversionError: the converter failed (its last lines are in the
            message; e.g. "BPE pre-tokenizer was not recognized" for a tokenizer llama.cpp does not know).
    """
    if outtype not in OUTTYPES:
        raise InvalidInputError(f"unknown GGUF type {outtype!r}: choose one of {', '.join(OUTTYPES)}")
    folder = find_converter()
    dest = Path(dest)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(folder / "gguf-py"), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [sys.executable, str(folder / SCRIPT), str(checkpoint), "--outfile", str(tmp), "--outtype", outtype]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        if done.returncode != 0:
            raise GgufConversionError(
                f"llama.cpp's converter could not convert {checkpoint}:\n{_tail(done.stderr + done.stdout)}"
            )
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp's file is private; the exported model is an ordinary file
        os.replace(tmp, dest)
    except subprocess.TimeoutExpired:
        raise GgufConversionError(f"llama.cpp's converter did not finish in {timeout:.0f} s") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _tail(log: str, lines: int = 8) -> str:
    """The converter's last lines that say something (not its progress bars or banner of asterisks)."""
    kept = [line for line in log.splitlines() if line.strip() and "****" not in line and "it/s]" not in line]
    return "\n".join(kept[-lines:])


def check_dest(dest: Path, overwrite: bool) -> Path:
    """``dest`` as a GGUF file path, its folder created.

    Raises:
        InvalidInputError: ``dest`` does not end in .gguf, is a folder, or exists (without ``overwrite``).
    """
    dest = Path(dest).expanduser()
    if dest.suffix != ".gguf":
        raise InvalidInputError(f"a GGUF export is one file: give a path ending in .gguf, not {dest}")
    if dest.is_dir():
        raise InvalidInputError(f"{dest} is a folder: give the path of the .gguf file to write")
    if dest.exists() and not overwrite:
        raise InvalidInputError(f"{dest} exists: choose another file, or pass --overwrite")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot write to {dest.parent}: {exc.strerror}") from None
    return dest
