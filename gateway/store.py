"""The artifact store: an fsspec location (a local directory by default, `s3://…` when
configured) holding published model bundles under `models/<model>/<version>/`.

A version is immutable once published: `manifest.json` (written last) records its bundle
sha256. Fetching copies a bundle into a private local directory and checks its digest against
the one the routing table expects, so what is loaded is exactly what was verified.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import fsspec

from evaluators.artifacts.loading import ArtifactError, Classifier, hidden_code, verify_artifact
from evaluators.bounded import DocumentError
from evaluators.candidate import parse_model_config
from gateway.bundle import MAX_FILES, BundleError, bundle_digest
from gateway.routing import NAME_PATTERN

MODELS_DIR = "models"
MANIFEST = "manifest.json"
MAX_BUNDLE_BYTES = 2 * 1024**3
_NAME = re.compile(NAME_PATTERN)


class StoreError(ValueError):
    """The store refuses the operation; the message says why."""


class DigestMismatch(StoreError):
    """The bundle in the store is not the one the routing table names."""


def _checked_name(kind: str, value: str) -> str:
    if not _NAME.match(value):
        raise StoreError(f"{kind} must match {NAME_PATTERN}")
    return value


class ArtifactStore:
    """Published bundles in one fsspec location."""

    def __init__(self, url: str) -> None:
        fs, root = fsspec.core.url_to_fs(url)
        self.fs: Any = fs
        self.root: str = str(root).rstrip("/") or "/"
        self.url = url

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _version_dir(self, model: str, version: str) -> str:
        return self.path(
            MODELS_DIR, _checked_name("model", model), _checked_name("version", version)
        )

    def recorded_sha256(self, model: str, version: str) -> str | None:
        """The digest recorded when the version was published, or None if it never was."""
        manifest = posixpath.join(self._version_dir(model, version), MANIFEST)
        if not self.fs.exists(manifest):
            return None
        with self.fs.open(manifest, "rb") as handle:
            data = json.loads(handle.read(64 * 1024))
        sha = data.get("sha256") if isinstance(data, dict) else None
        return sha if isinstance(sha, str) else None

    def publish(
        self, model_dir: Path, *, model: str, version: str, classify: Classifier | None = None
    ) -> str:
        """Copy the bundle of a registry model directory into the store; its sha256.

        `classify` judges the weights' bytes (the bot passes its audit process's)."""
        target = self._version_dir(model, version)
        try:
            sha, entries = bundle_digest(model_dir)
            config = parse_model_config((model_dir / "config.yaml").read_text(encoding="utf-8"))
        except (BundleError, DocumentError) as exc:
            raise StoreError(str(exc)) from None
        for rel in entries:
            reason = hidden_code((model_dir / rel).read_bytes(), filename=rel)
            if reason:
                raise StoreError(reason)
        try:
            verify_artifact(
                model_dir / config.weights,
                expected=config.format,
                root=model_dir,
                classify=classify,
            )
        except ArtifactError as exc:
            raise StoreError(str(exc)) from None
        existing = self.recorded_sha256(model, version)
        if existing is not None:
            if existing != sha:
                raise StoreError(
                    f"{model} {version} is already published with a different sha256; "
                    "versions are immutable"
                )
            return sha
        for rel in entries:
            destination = posixpath.join(target, rel)
            self.fs.makedirs(posixpath.dirname(destination), exist_ok=True)
            self.fs.put_file(str(model_dir / rel), destination)
        manifest = {"model": model, "version": version, "sha256": sha, "files": entries}
        with self.fs.open(posixpath.join(target, MANIFEST), "w") as handle:
            handle.write(json.dumps(manifest, indent=2, sort_keys=True))
        return sha

    def fetch(self, model: str, version: str, *, sha256: str, into: Path) -> Path:
        """A local copy of the bundle, verified against `sha256` (DigestMismatch if not)."""
        final = into / sha256
        if final.is_dir():
            return final  # verified when it was put there; the directory is ours
        source = self._version_dir(model, version)
        if not self.fs.exists(source):
            raise StoreError(f"{model} {version} is not in the artifact store")
        staging = into / f".fetch-{uuid.uuid4().hex}"
        try:
            self._copy_bundle(source, staging)
            actual, _ = bundle_digest(staging)
            if actual != sha256:
                raise DigestMismatch(f"{model} {version}: the bundle's sha256 does not match")
            try:
                staging.rename(final)
            except OSError:
                if not final.is_dir():
                    raise
        except BundleError as exc:
            raise StoreError(f"{model} {version}: {exc}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    def _copy_bundle(self, source: str, staging: Path) -> None:
        listing: dict[str, dict[str, Any]] = self.fs.find(source, detail=True)
        files = {p: info for p, info in listing.items() if posixpath.basename(p) != MANIFEST}
        if len(files) > MAX_FILES:
            raise StoreError("the bundle in the store holds too many files")
        if sum(int(info.get("size") or 0) for info in files.values()) > MAX_BUNDLE_BYTES:
            raise StoreError("the bundle in the store is too large")
        base = source.rstrip("/") + "/"
        for remote in files:
            rel = remote[len(base) :] if remote.startswith(base) else ""
            parts = rel.split("/")
            if not rel or ".." in parts or rel.startswith("/"):
                raise StoreError("the bundle in the store holds an unexpected path")
            local = staging.joinpath(*parts)
            local.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(remote, str(local))
