"""Builds the local images as OCI-layout archives, with no network.

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

import hashlib
import io
import json
import platform
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

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


def import_archive(socket: str | Path, archive: Path, ctr: str = "ctr") -> str:
    """Imports an archive into containerd's k8s.io namespace; returns ctr's output."""
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
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ctr import {archive}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Build (and import) the pilothouse images.")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--import-to", metavar="SOCKET", help="containerd socket to import into")
    args = ap.parse_args()
    for name, path in build_images(args.out_dir).items():
        print(f"{name}\t{path}")
        if args.import_to:
            import_archive(args.import_to, path)


if __name__ == "__main__":
    main()
