"""Model artifacts: written once, atomically, and verified before every load.

``<root>/models/<name>/<version>/`` holds what the adapter wrote plus ``artifact.json``
(framework and per-file sha256). The version's **sha256** is the sha256 of the lines
``"<relative path>\\0<file sha256>\\n"`` over every file in the folder, sorted by path:
a change to any byte, a missing file or an extra file changes it. A symbolic link anywhere
in the folder is refused: its target lies outside what the checksum covers (a link to a
file can be repointed later, and a linked folder is not hashed at all).

With a remote :class:`~driftloop.objectstore.ObjectStore` (``--artifacts s3://...``) the
version is also uploaded, as the one object ``models/<name>/<version>.tar``, *before*
``write`` returns (so before the registry inserts its row), and ``<root>`` becomes this
host's cache: a version missing there is downloaded, unpacked into a temporary folder,
checked against the recorded sha256 and only then renamed into place and loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from driftloop.fsutil import atomic_directory, file_digest
from driftloop.models.base import ModelAdapter
from driftloop.objectstore import (
    CorruptObjectError,
    ObjectMissingError,
    ObjectStore,
    download,
    upload,
)
from driftloop.registry.errors import ArtifactIntegrityError

MANIFEST = "artifact.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_model_name(name: str) -> str:
    """Model names become folder names: letters, digits, '.', '_', '-', at most 100."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"name: {name!r} is not a valid model name (letters, digits, '.', '_', '-'; "
            "1 to 100 characters, starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True)
class StoredArtifact:
    path: str  # relative to the store root, '/'-separated
    sha256: str
    size_bytes: int


def folder_digest(folder: Path) -> tuple[str, int]:
    """The sha256 defined above and the total size of the files in ``folder``;
    ArtifactIntegrityError if the folder is, or contains, a symbolic link."""
    entries = sorted(folder.rglob("*"))
    links = [p for p in [folder, *entries] if p.is_symlink()]
    if links:
        raise ArtifactIntegrityError(
            f"artifact {folder} contains a symbolic link ({links[0]}); it was not loaded: "
            "an artifact folder must hold plain files only")
    digest = hashlib.sha256()
    size = 0
    for file in (p for p in entries if p.is_file()):
        relative = file.relative_to(folder).as_posix()
        digest.update(f"{relative}\0{file_digest(file)}\n".encode())
        size += file.stat().st_size
    return digest.hexdigest(), size


class ArtifactStore:
    """Model folders under ``root / "models"``, and in ``remote`` when there is one."""

    def __init__(self, root: Path, remote: ObjectStore | None = None) -> None:
        self.root = Path(root)
        self.remote = remote

    def describe(self, relative: str) -> str:
        """Where the artifact lives, for messages (a URL holds no credential)."""
        if self.remote is not None:
            return f"{self.remote.url}/{relative}.tar"
        return str(self.root / relative)

    def write(self, name: str, version: int, model: Any, adapter: ModelAdapter) -> StoredArtifact:
        relative = f"models/{check_model_name(name)}/{version}"
        with atomic_directory(self.root / relative) as tmp:
            adapter.save(model, tmp)
            files = {p.relative_to(tmp).as_posix(): file_digest(p)
                     for p in sorted(tmp.rglob("*")) if p.is_file()}
            meta = {"name": name, "version": version, "framework": adapter.framework,
                    "files": files}
            (tmp / MANIFEST).write_text(json.dumps(meta, indent=2, sort_keys=True))
            sha256, size = folder_digest(tmp)
            if self.remote is not None:  # fails the push (no row) when the upload fails
                upload(self.remote, f"{relative}.tar", tmp)
        return StoredArtifact(relative, sha256, size)

    def verify(self, relative: str, expected_sha256: str) -> Path:
        """The artifact folder, after checking its sha256; ArtifactIntegrityError otherwise."""
        folder = self.root / relative
        if not folder.is_dir() and self.remote is not None:
            self._fetch(relative, expected_sha256)
        if not folder.is_dir():
            raise ArtifactIntegrityError(f"artifact {folder} is missing")
        actual, _ = folder_digest(folder)
        if actual != expected_sha256:
            raise ArtifactIntegrityError(
                f"artifact {folder} is corrupt: sha256 {actual} != recorded {expected_sha256}; "
                "it was not loaded. Restore it from a backup or roll back to another version."
            )
        return folder

    def load(self, relative: str, expected_sha256: str, adapter: ModelAdapter) -> Any:
        return adapter.load(self.verify(relative, expected_sha256))

    def _fetch(self, relative: str, expected_sha256: str) -> None:
        """Download, unpack and check the version, then rename it into the local cache."""
        assert self.remote is not None
        where = self.describe(relative)
        try:
            download(self.remote, f"{relative}.tar", self.root / relative,
                     lambda tmp: _check_digest(tmp, expected_sha256, where))
        except ObjectMissingError:
            raise ArtifactIntegrityError(f"artifact {where} is missing") from None
        except CorruptObjectError as exc:
            raise ArtifactIntegrityError(f"artifact {exc}; it was not loaded") from exc

    def orphans(self, referenced: set[str], older_than: float) -> list[Path]:
        """Model folders no row references and temporary folders a crash left behind,
        last modified more than ``older_than`` seconds ago (younger ones may belong to a
        push still in progress in another process)."""
        models = self.root / "models"
        if not models.is_dir():
            return []
        cutoff = time.time() - older_than
        found = []
        for folder in sorted(models.glob("*/*")):
            relative = folder.relative_to(self.root).as_posix()
            if folder.is_dir() and relative not in referenced and folder.stat().st_mtime < cutoff:
                found.append(folder)
        return found

    def remote_orphans(self, referenced: set[str], older_than: float) -> list[str]:
        """Objects under ``models/`` that no row references, older than ``older_than``
        seconds (a push killed between its upload and its row); unfinished multipart
        uploads of that age are aborted on the way."""
        if self.remote is None:
            return []
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        self.remote.abort_stale_uploads(cutoff)
        return [item.key for item in self.remote.list("models/")
                if item.key.removesuffix(".tar") not in referenced
                and item.last_modified < cutoff]


def _check_digest(folder: Path, expected_sha256: str, where: str) -> None:
    actual, _ = folder_digest(folder)
    if actual != expected_sha256:
        raise ArtifactIntegrityError(
            f"artifact {where} is corrupt: sha256 {actual} != recorded {expected_sha256}; it "
            "was not loaded. Restore it from a backup or roll back to another version.")
