"""Checkpoint files: safetensors tensors + metadata, model ids, checksums, JSON manifests, rate
levels.

The bottom of the core: every checkpoint (teacher, HECS-B bottleneck, baseline) is read and
written here, and nothing here knows what the tensors mean.

- **Tensors** (:func:`write_tensors`, :func:`read_tensors`): safetensors files with string
  metadata; reading never unpickles code. A file is checked against the ``SHA256SUMS`` beside it
  before any byte of it is used (:func:`verify_checkpoint`).
- **Model id** (:func:`model_id_of`): the first 16 hex characters of the file's SHA-256; edge and
  server compare it, so a server refuses payloads of another encoder.
- **Checksums** (``SHA256SUMS``, :func:`write_checksums`, :func:`read_checksums`): one list per
  checkpoint folder in ``sha256sum`` format (``sha256sum -c SHA256SUMS`` checks it from a shell)::

      3b1f...e9  teacher_fmnist.safetensors

  Names are plain file names in the list's own folder: a list cannot vouch for a file elsewhere.
- **Manifest** (:func:`write_manifest`, :func:`read_manifest`): ``{checkpoint}.json`` beside a
  trained checkpoint: how it was trained and what it measured (accuracy, bytes, command).
- **Rate levels** (:func:`level_path`, :func:`list_levels`): ``{kind}_{tag}_r{LEVEL}.safetensors``,
  ``kind`` the learned codec (``hecsb``, ``svb``, ...), ``tag`` the teacher it was trained for
  (``fmnist``, ``resnet50``, ...), level 0 the fewest bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

#: The shipped checkpoints (teacher, rate levels, manifests, SHA256SUMS).
CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
CHECKSUMS_NAME = "SHA256SUMS"
_CHECKSUM_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *]([^/\\]+)$")


class ChecksumError(ValueError):
    """A checkpoint does not match its ``SHA256SUMS`` entry, or the list is malformed."""


# -- hashes
# -----------------------------------------------------------------------------------------
def sha256_of(path: Path | str) -> str:
    """Full hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_id_of(path: Path | str) -> str:
    """First 16 hex characters of the SHA-256 of the file's bytes."""
    return sha256_of(path)[:16]


# -- checksums
# ---------------------------------------------------------------------------------------
def read_checksums(path: Path | str) -> dict[str, str]:
    """File name -> lower-case hex SHA-256 from a ``SHA256SUMS`` file."""
    entries: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _CHECKSUM_LINE.match(line.rstrip("\r"))
        if not m or m.group(2) in (".", ".."):
            raise ChecksumError(
                f"{path}:{number}: not '<64 hex>  <file name>' (no folders): {line[:80]!r}"
            )
        name, digest = m.group(2), m.group(1).lower()
        if entries.get(name, digest) != digest:
            raise ChecksumError(f"{path}:{number}: {name} listed twice with different hashes")
        entries[name] = digest
    return entries


def write_checksums(folder: Path | str, names: list[str] | None = None) -> Path:
    """Write ``folder/SHA256SUMS`` for ``names`` (default: every ``*.safetensors`` and ``*.pth``
    there)."""
    folder = Path(folder)
    if names is None:
        names = sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".pth"))
    lines = [f"{sha256_of(folder / n)}  {n}" for n in names if "/" not in n and "\\" not in n]
    path = folder / CHECKSUMS_NAME
    path.write_text("\n".join(lines) + "\n")
    return path


def verify_checkpoint(
    path: Path | str, checksums: Path | str | None = None, required: bool = False
) -> str | None:
    """Check ``path`` against its ``SHA256SUMS`` (default: the one beside it).

    Returns the verified hex SHA-256, or None when there is no entry and ``required`` is False.
    Raises :class:`ChecksumError` when the hash differs, or when ``required`` and the list or the
    entry is missing.
    """
    path = Path(path)
    checksums = Path(checksums) if checksums is not None else path.parent / CHECKSUMS_NAME
    if not checksums.is_file():
        if required:
            raise ChecksumError(f"no checksum list {checksums} for checkpoint {path}")
        return None
    if checksums.resolve().parent != path.resolve().parent:
        raise ChecksumError(
            f"checksum list {checksums} lists files of its own folder only, not {path}"
        )
    expected = read_checksums(checksums).get(path.name)
    if expected is None:
        if required:
            raise ChecksumError(f"checkpoint {path.name} is not listed in {checksums}")
        return None
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"checkpoint {path} has SHA-256 {actual[:16]}..., its checksum list "
            f"{checksums} says "
            f"{expected[:16]}...: refusing to load it (replace the file or update "
            "the list with "
            "'python -m hecsb_ros.cli.manifest <folder>')"
        )
    return actual


# -- tensors
# -----------------------------------------------------------------------------------------
def write_tensors(
    path: Path | str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> Path:
    """Write ``tensors`` and string ``metadata`` to a safetensors file atomically (tmp +
    rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise TypeError(f"metadata keys and values must be str: {bad}")
    tmp = path.with_name(path.name + ".tmp")
    save_file(clean, str(tmp), metadata=dict(metadata))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def read_tensors(
    path: Path | str, device: str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the metadata of a safetensors file, after :func:`verify_checkpoint`."""
    from safetensors import safe_open

    verify_checkpoint(path)
    with safe_open(str(path), framework="pt", device=device) as fh:
        metadata = dict(fh.metadata() or {})
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    return tensors, metadata


def read_metadata(path: Path | str) -> tuple[list[str], dict[str, str]]:
    """Tensor names and metadata of a safetensors file, without reading the tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return list(fh.keys()), dict(fh.metadata() or {})


def metadata_value(value: Any) -> str:
    """A metadata value as stored: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


# -- manifests
# ---------------------------------------------------------------------------------------
def manifest_path(path: Path | str) -> Path:
    """``{checkpoint}.json``: the manifest beside a checkpoint."""
    return Path(path).with_suffix(".json")


def write_manifest(path: Path | str, fields: dict[str, Any]) -> Path:
    """Write the manifest of checkpoint ``path``: ``file``, ``fields``, then its model id and
    SHA-256."""
    path = Path(path)
    manifest = {
        "file": path.name,
        **fields,
        "model_id": model_id_of(path),
        "sha256": sha256_of(path),
    }
    out = manifest_path(path)
    out.write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def read_manifest(path: Path | str) -> dict[str, Any]:
    """The manifest of checkpoint ``path`` (``{}`` when it has none)."""
    p = manifest_path(path)
    return json.loads(p.read_text()) if p.exists() else {}


# -- rate levels
# -------------------------------------------------------------------------------------
def level_path(kind: str, tag: str, level: int, folder: Path | None = None) -> Path:
    """Checkpoint path of rate level ``level`` of learned codec ``kind`` for teacher ``tag``."""
    return prefix_level_path(f"{kind}_{tag}", level, folder)


def list_levels(kind: str, tag: str, folder: Path | None = None) -> list[int]:
    """Rate levels of ``kind`` for teacher ``tag`` whose checkpoints exist in ``folder``,
    sorted."""
    return prefix_levels(f"{kind}_{tag}", folder)


def prefix_level_path(prefix: str, level: int, folder: Path | None = None) -> Path:
    """``{folder}/{prefix}_r{level}.safetensors`` (``folder``: the shipped checkpoints)."""
    return (folder or CHECKPOINT_DIR) / f"{prefix}_r{level}.safetensors"


def prefix_levels(prefix: str, folder: Path | None = None) -> list[int]:
    """Levels of the files ``{prefix}_r{LEVEL}.safetensors`` in ``folder``, sorted."""
    folder = folder or CHECKPOINT_DIR
    pattern = re.compile(rf"{re.escape(prefix)}_r(\d+)\.safetensors$")
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for m in (pattern.match(p.name) for p in folder.iterdir()) if m)
