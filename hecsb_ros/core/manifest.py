"""Checkpoint manifests: SHA-256 of every checkpoint file, checked before a checkpoint is loaded.

A manifest is a ``SHA256SUMS`` file in the checkpoints' folder, in ``sha256sum`` format (so
``sha256sum -c SHA256SUMS`` checks it from a shell too)::

    3b1f...e9  teacher_fmnist.safetensors

Names are plain file names in the manifest's own folder: a manifest cannot vouch for a file
elsewhere. :func:`verify_checkpoint` refuses a file whose hash differs from its entry, and, when
``required``, a file without an entry. Loaders call it before reading any byte of the checkpoint.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

MANIFEST_NAME = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *]([^/\\]+)$")


class ManifestError(ValueError):
    """A checkpoint does not match its manifest, or a manifest is malformed."""


def sha256_file(path: Path | str) -> str:
    """Full hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(path: Path | str) -> dict[str, str]:
    """File name -> lower-case hex SHA-256 from a ``SHA256SUMS`` file."""
    entries: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.match(line.rstrip("\r"))
        if not m or m.group(2) in (".", ".."):
            raise ManifestError(f"{path}:{number}: not '<64 hex>  <file name>' (no folders): {line[:80]!r}")
        name, digest = m.group(2), m.group(1).lower()
        if entries.get(name, digest) != digest:
            raise ManifestError(f"{path}:{number}: {name} listed twice with different hashes")
        entries[name] = digest
    return entries


def write_manifest(folder: Path | str, names: list[str] | None = None) -> Path:
    """Write ``folder/SHA256SUMS`` for ``names`` (default: every ``*.safetensors`` and ``*.pth`` there)."""
    folder = Path(folder)
    if names is None:
        names = sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".pth"))
    lines = [f"{sha256_file(folder / n)}  {n}" for n in names if "/" not in n and "\\" not in n]
    path = folder / MANIFEST_NAME
    path.write_text("\n".join(lines) + "\n")
    return path


def verify_checkpoint(path: Path | str, manifest: Path | str | None = None, required: bool = False) -> str | None:
    """Check ``path`` against its manifest (default: ``SHA256SUMS`` beside it).

    Returns the verified hex SHA-256, or None when there is no manifest entry and ``required`` is
    False. Raises :class:`ManifestError` when the hash differs, or when ``required`` and the
    manifest or the entry is missing.
    """
    path = Path(path)
    manifest = Path(manifest) if manifest is not None else path.parent / MANIFEST_NAME
    if not manifest.is_file():
        if required:
            raise ManifestError(f"no manifest {manifest} for checkpoint {path}")
        return None
    if manifest.resolve().parent != path.resolve().parent:
        raise ManifestError(f"manifest {manifest} lists files of its own folder only, not {path}")
    expected = read_manifest(manifest).get(path.name)
    if expected is None:
        if required:
            raise ManifestError(f"checkpoint {path.name} is not listed in {manifest}")
        return None
    actual = sha256_file(path)
    if actual != expected:
        raise ManifestError(f"checkpoint {path} has SHA-256 {actual[:16]}..., its manifest {manifest} says "
                            f"{expected[:16]}...: refusing to load it (replace the file or update the manifest)")
    return actual
