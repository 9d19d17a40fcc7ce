"""Builds the local images as OCI-layout archives, with no network, and
imports image archives into containerd (for `up`, and for the agent's side of
`pilothouse image import`).

Both images share one layer: Debian's static busybox plus applet symlinks. The
pause image runs `busybox sleep` as the sandbox process. The archives import with
`ctr -n k8s.io --address SOCK images import --all-platforms FILE`.

The busybox image's `wget -q -O- http://IP/` works in a pod (the end-to-end
test uses it between nodes). Debian builds busybox without wget's timeout
feature, and its `wget -T N` then crashes (SIGSEGV) while parsing the option,
before any network access, in a pod and on the host alike; bound a fetch with
`timeout N wget ...` instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.protocol import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    NOT_FOUND,
    Handler,
    ImageArchiveError,
    ImageImportResult,
    InvalidParams,
    Params,
    RpcError,
    image_archive_names,
    image_chunk_data,
)

PAUSE_IMAGE = "docker.io/pilothouse/pause:latest"
BUSYBOX_IMAGE = "docker.io/pilothouse/busybox:latest"
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
APPLETS = (
    "sh ash cat echo ls sleep httpd wget nslookup ping ps kill env mkdir rm cp mv "
    "true false date hostname id ip ifconfig netstat nc grep sed head tail touch "
    "printf test [ top free df du mount uname vi seq wc sort uniq"
).split()
INDEX_HTML = b"<html><body><h1>pilothouse busybox</h1></body></html>\n"
MTIME = 946684800  # fixed, so that rebuilt layers keep their digest

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class ImageSpec:
    name: str  # fully qualified, e.g. docker.io/pilothouse/busybox:latest
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = "/"


PAUSE = ImageSpec(PAUSE_IMAGE, entrypoint=("/bin/busybox", "sleep", "2147483647"))
BUSYBOX = ImageSpec(BUSYBOX_IMAGE, cmd=("sh",))


def find_busybox() -> Path:
    for p in BUSYBOX_PATHS:
        if Path(p).is_file():
            return Path(p)
    found = shutil.which("busybox")
    if found is None:
        raise FileNotFoundError("busybox not found: apt-get install busybox-static")
    return Path(found)


def go_arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, **kw: object) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.uid = info.gid = 0
    for k, v in kw.items():
        setattr(info, k, v)
    if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def applets(busybox: Path) -> list[str]:
    """Every applet this busybox has (falls back to a fixed list)."""
    try:
        out = subprocess.run(
            [str(busybox), "--list"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    names = {a for a in out if a and "/" not in a and a != "busybox"}
    return sorted(names or APPLETS)


def busybox_layer(busybox: Path | None = None) -> bytes:
    """An uncompressed rootfs tar: /bin/busybox, applet links, a few dirs and files."""
    busybox = busybox or find_busybox()
    binary = busybox.read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "etc", "tmp", "var", "var/www", "proc", "sys", "dev", "root"):
            mode = 0o1777 if d == "tmp" else 0o755
            _add(tar, d, type=tarfile.DIRTYPE, mode=mode)
        _add(tar, "bin/busybox", data=binary, mode=0o755)
        for applet in applets(busybox):
            _add(tar, f"bin/{applet}", type=tarfile.SYMTYPE, linkname="busybox", mode=0o777)
        _add(tar, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n", mode=0o644)
        _add(tar, "etc/group", data=b"root:x:0:\n", mode=0o644)
        _add(tar, "var/www/index.html", data=INDEX_HTML, mode=0o644)
    return buf.getvalue()


def oci_archive(spec: ImageSpec, layer: bytes) -> bytes:
    """An OCI image layout, as a tar, holding one single-layer image."""
    layer_digest = _sha(layer)
    config: dict[str, object] = {
        "created": "2000-01-01T00:00:00Z",
        "architecture": go_arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "WorkingDir": spec.workdir,
            **({"Entrypoint": list(spec.entrypoint)} if spec.entrypoint else {}),
            **({"Cmd": list(spec.cmd)} if spec.cmd else {}),
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "2000-01-01T00:00:00Z", "created_by": "pilothouse"}],
    }
    config_b = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": _sha(config_b), "size": len(config_b)},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": layer_digest, "size": len(layer)}],
    }
    manifest_b = json.dumps(manifest, sort_keys=True).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": _sha(manifest_b),
                "size": len(manifest_b),
                "annotations": {
                    "io.containerd.image.name": spec.name,
                    "org.opencontainers.image.ref.name": spec.name,
                },
                "platform": {"architecture": go_arch(), "os": "linux"},
            }
        ],
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "blobs", type=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "blobs/sha256", type=tarfile.DIRTYPE, mode=0o755)
        for blob in (layer, config_b, manifest_b):
            _add(tar, "blobs/sha256/" + _sha(blob)[7:], data=blob, mode=0o644)
        _add(tar, "oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}', mode=0o644)
        _add(tar, "index.json", data=json.dumps(index).encode(), mode=0o644)
    return buf.getvalue()


def build_images(out_dir: Path, busybox: Path | None = None) -> dict[str, Path]:
    """Writes pause.tar and busybox.tar into out_dir; returns {image name: archive}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    layer = busybox_layer(busybox)
    result: dict[str, Path] = {}
    for spec, file in ((PAUSE, "pause.tar"), (BUSYBOX, "busybox.tar")):
        path = out_dir / file
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(oci_archive(spec, layer))
        tmp.replace(path)
        result[spec.name] = path
    return result


_UNPACKED = re.compile(r"^unpacking (\S+) \((sha256:[0-9a-f]+)\)\.\.\.done", re.MULTILINE)


def import_archive(
    socket: str | Path, archive: Path, ctr: str = "ctr", timeout: float = 120.0
) -> list[str]:
    """Imports an archive into containerd's k8s.io namespace; returns the image
    names containerd stored (as ctr reports them while it unpacks)."""
    proc = subprocess.run(
        [
            ctr,
            "-n",
            "k8s.io",
            "--address",
            str(socket),
            "images",
            "import",
            "--all-platforms",
            str(archive),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ctr import {archive}: {proc.stderr.strip() or proc.stdout.strip()}")
    return [m.group(1) for m in _UNPACKED.finditer(proc.stdout)]


# The agent's side of `image_import_*`: one temp file per open transfer.
Importer = Callable[[Path], list[str]]
_TMP_PREFIX, _TMP_SUFFIX = "image-import-", ".tar"


@dataclass
class _Transfer:
    path: Path
    size: int
    received: int = 0
    digest: Any = field(default_factory=hashlib.sha256)


class ImageReceiver:
    """Receives image archives chunk by chunk into temp files under `tmp_dir`,
    checks them, and hands them to `importer` (which returns the image names);
    the temp file is removed whatever happens. `close()` drops every open
    transfer, for when the connection ends."""

    def __init__(self, importer: Importer, tmp_dir: Path | None = None, max_open: int = 4) -> None:
        self.importer = importer
        self.tmp_dir = tmp_dir
        self.max_open = max_open
        self.transfers: dict[str, _Transfer] = {}

    def handlers(self) -> dict[str, Handler]:
        return {
            "image_import_begin": self.begin,
            "image_import_chunk": self.chunk,
            "image_import_commit": self.commit,
            "image_import_abort": self.abort,
        }

    def _get(self, params: Params) -> _Transfer:
        transfer = self.transfers.get(str(params["transfer"]))
        if transfer is None:
            raise RpcError(NOT_FOUND, f"no image transfer {params['transfer']!r} is open")
        return transfer

    async def begin(self, params: Params) -> dict[str, Any]:
        name, size = str(params["transfer"]), int(params["size"])
        if name in self.transfers:
            raise InvalidParams(f"transfer {name!r} is already open")
        if size < 0:
            raise InvalidParams("size: must be >= 0")
        if len(self.transfers) >= self.max_open:
            raise RpcError(INTERNAL_ERROR, f"{self.max_open} image imports are already under way")
        if self.tmp_dir is not None:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
        st = os.statvfs(self.tmp_dir or tempfile.gettempdir())
        if size > st.f_bavail * st.f_frsize:
            free = st.f_bavail * st.f_frsize
            raise RpcError(
                INTERNAL_ERROR, f"not enough disk space: {size} bytes to receive, {free} free"
            )
        fd, path = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=self.tmp_dir)
        os.close(fd)
        self.transfers[name] = _Transfer(Path(path), size)
        return {}

    async def chunk(self, params: Params) -> dict[str, Any]:
        transfer = self._get(params)
        data = image_chunk_data(params)
        offset = int(params["offset"])
        if offset != transfer.received:
            raise InvalidParams(f"offset {offset}: expected {transfer.received}")
        if transfer.received + len(data) > transfer.size:
            raise InvalidParams(f"more than the {transfer.size} bytes announced")
        await asyncio.to_thread(_append, transfer.path, data)
        transfer.digest.update(data)
        transfer.received += len(data)
        return {"received": transfer.received}

    async def commit(self, params: Params) -> ImageImportResult:
        transfer = self._get(params)
        try:
            if transfer.received != transfer.size or int(params["size"]) != transfer.size:
                raise RpcError(
                    INVALID_PARAMS, f"received {transfer.received} of {transfer.size} bytes"
                )
            if str(params["sha256"]) != transfer.digest.hexdigest():
                raise RpcError(
                    INVALID_PARAMS, "the archive's sha256 does not match: it was damaged"
                )
            try:
                await asyncio.to_thread(image_archive_names, transfer.path)
            except ImageArchiveError as e:
                raise RpcError(INVALID_PARAMS, str(e)) from None
            try:
                images = await asyncio.to_thread(self.importer, transfer.path)
            except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                raise RpcError(INTERNAL_ERROR, f"containerd refused it: {e}") from None
            if not images:
                raise RpcError(INTERNAL_ERROR, "containerd imported no named image from it")
            return ImageImportResult(images=images)
        finally:
            self._drop(str(params["transfer"]))

    async def abort(self, params: Params) -> dict[str, Any]:
        self._drop(str(params["transfer"]))
        return {}

    def _drop(self, name: str) -> None:
        transfer = self.transfers.pop(name, None)
        if transfer is not None:
            transfer.path.unlink(missing_ok=True)

    def close(self) -> None:
        for name in list(self.transfers):
            self._drop(name)

    def sweep(self) -> None:
        """Remove what an agent that died mid-upload left in `tmp_dir` (call it
        before any transfer opens; never with the system's temp dir)."""
        if self.tmp_dir is None or self.transfers:
            return
        for path in self.tmp_dir.glob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}"):
            path.unlink(missing_ok=True)


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python3 -m agent.images",
        description="Build the pilothouse images into OUT_DIR (printing NAME<tab>ARCHIVE), "
        "and import them with --import-to; or, with --archive, import existing archives "
        "(printing the image names containerd stored).",
    )
    ap.add_argument("out_dir", type=Path, nargs="?", help="where to build the archives")
    ap.add_argument("--import-to", metavar="SOCKET", help="containerd socket to import into")
    ap.add_argument(
        "--archive",
        action="append",
        type=Path,
        default=[],
        help="import this archive instead of building (repeatable; needs --import-to)",
    )
    args = ap.parse_args(argv)
    if args.archive:
        if not args.import_to or args.out_dir:
            ap.error("--archive takes --import-to and no OUT_DIR")
        for archive in args.archive:
            try:
                names = import_archive(args.import_to, archive)
            except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                raise SystemExit(f"python3 -m agent.images: {e}") from None
            for name in names:
                print(f"{name}\t{archive}")
        return
    if args.out_dir is None:
        ap.error("OUT_DIR is required (or --archive)")
    for name, path in build_images(args.out_dir).items():
        print(f"{name}\t{path}")
        if args.import_to:
            import_archive(args.import_to, path)


if __name__ == "__main__":
    main()
