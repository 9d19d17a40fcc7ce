"""Image import over the protocol.

`pilothouse image import` sends an image archive to a node in bounded chunks:
`image_import_begin` opens a transfer, `image_import_chunk` appends base64 data
at an offset, `image_import_commit` checks size and digest and imports the
archive into containerd (its result names the images), `image_import_abort`
drops a transfer. An agent drops its open transfers when the connection ends.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tarfile

from .errors import InvalidParams
from .messages import ImageImportChunkParams, Json, Params

# Raw bytes per chunk: base64 makes it exactly 1 MiB, far below the message limit.
IMAGE_CHUNK_BYTES = 768 * 1024
# containerd may take a while to unpack a large image.
IMAGE_COMMIT_TIMEOUT = 300.0
# The largest JSON document read from an archive (index.json, manifest.json).
_ARCHIVE_JSON_LIMIT = 4 * 1024 * 1024


class ImageArchiveError(ValueError):
    """A file that is not an OCI or docker image archive."""


def image_chunk(transfer: str, offset: int, data: bytes) -> ImageImportChunkParams:
    if len(data) > IMAGE_CHUNK_BYTES:
        raise ValueError(f"a chunk holds at most {IMAGE_CHUNK_BYTES} bytes, not {len(data)}")
    return ImageImportChunkParams(
        transfer=transfer, offset=offset, data=base64.b64encode(data).decode("ascii")
    )


def image_chunk_data(params: Params) -> bytes:
    """The bytes of an `image_import_chunk`; InvalidParams when they are not base64
    or too many."""
    try:
        data = base64.b64decode(str(params["data"]), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidParams(f"data: not base64: {e}") from None
    if len(data) > IMAGE_CHUNK_BYTES:
        raise InvalidParams(f"data: a chunk holds at most {IMAGE_CHUNK_BYTES} bytes")
    return data


def image_archive_names(path: str | os.PathLike[str]) -> tuple[str, list[str]]:
    """What an image archive is ("oci" or "docker") and the image names it
    carries (possibly none). Raises ImageArchiveError when it is not a tar, or
    has neither an OCI `index.json` nor a docker `manifest.json`."""
    try:
        tar = tarfile.open(path, "r:*")
    except tarfile.TarError:
        raise ImageArchiveError("not a tar archive") from None
    with tar:
        try:
            members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ImageArchiveError(f"a damaged tar archive: {e}") from None
        if "index.json" in members:
            index = _archive_json(tar, members["index.json"])
            names = []
            for m in index.get("manifests") or [] if isinstance(index, dict) else []:
                notes = (m.get("annotations") or {}) if isinstance(m, dict) else {}
                name = notes.get("io.containerd.image.name") or notes.get(
                    "org.opencontainers.image.ref.name"
                )
                if isinstance(name, str) and name:
                    names.append(name)
            return "oci", names
        if "manifest.json" in members:
            manifest = _archive_json(tar, members["manifest.json"])
            entries = manifest if isinstance(manifest, list) else []
            tags = [t for e in entries if isinstance(e, dict) for t in e.get("RepoTags") or []]
            return "docker", [str(t) for t in tags]
    raise ImageArchiveError(
        "not an OCI or docker image archive: it has no index.json or manifest.json"
    )


def _archive_json(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Json:
    if member.size > _ARCHIVE_JSON_LIMIT:
        raise ImageArchiveError(f"{member.name} is too large ({member.size} bytes)")
    f = tar.extractfile(member)
    if f is None:
        raise ImageArchiveError(f"{member.name} cannot be read")
    try:
        return json.loads(f.read())
    except (ValueError, tarfile.TarError, OSError) as e:
        raise ImageArchiveError(f"{member.name} is not valid JSON: {e}") from None
