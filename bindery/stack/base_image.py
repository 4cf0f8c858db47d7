"""The Jupyter-ready base image, made locally from reachable sources when it is missing.

debootstrap (Debian minbase from the mirror apt uses) → ``podman import`` → ``base/Containerfile``
(host CA certs trusted, venv with pinned jupyterhub/jupyter_server/notebook, user jovyan) in the BUILD
store → push to the stack's registry as ``<registry_host>/bindery/base:<recipe-hash>``.

The recipe hash covers the Containerfile, the debootstrap arguments, the pinned versions and the CA
certificates, so the image is rebuilt only when one of them changes. The built image is kept as an OCI
layout folder ``<cache_dir>/base-<hash>.oci`` (compressed blobs): other stacks on the machine copy it
into their registry with skopeo in ~2 s instead of building again. Build stores pull it from the
registry on their first build, as a build node would.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from bindery import datadir, process_runner
from bindery.datadir import StackPaths, write_if_changed
from bindery.registry_client import by_digest, docker_config
from bindery.settings import Settings
from bindery.stack import podman, registry_server as registry
from bindery.stack.process import StackError

HERE = Path(__file__).parent / "base"
SERVER_TRIMS = "server_trims.py"  # run in the image at build time (kept there for --undo)
SUITE = "bookworm"
VARIANT = "minbase"
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "git", "tini")
JUPYTER_SERVER_VERSION = "2.17.0"
NOTEBOOK_VERSION = "7.4.7"
UV_VERSION = "0.13.9"
# Pinned because the base image edits them (base/server_trims.py): each edit must find its text.
JSONSCHEMA_VERSION = "4.26.0"
AIOHTTP_VERSION = "3.14.5"  # the hub's too (tests/unit/test_server_trims.py edits the hub's copy)
PYTHON_VERSION = "3.11"  # the Python of SUITE (bookworm): what images built FROM the base run
CA_DIR = Path("/usr/local/share/ca-certificates")


def hub_version() -> str:
    """The single-user servers run the same jupyterhub version as the hub."""
    try:
        return metadata.version("jupyterhub")
    except metadata.PackageNotFoundError:
        return "6.1.1"


def versions() -> dict[str, str]:
    return {
        "JUPYTERHUB_VERSION": hub_version(),
        "JUPYTER_SERVER_VERSION": JUPYTER_SERVER_VERSION,
        "NOTEBOOK_VERSION": NOTEBOOK_VERSION,
        "UV_VERSION": UV_VERSION,
        "JSONSCHEMA_VERSION": JSONSCHEMA_VERSION,
        "AIOHTTP_VERSION": AIOHTTP_VERSION,
    }


def ca_certs() -> list[Path]:
    if not CA_DIR.is_dir():
        return []
    return sorted(p for p in CA_DIR.rglob("*.crt") if p.is_file())


def recipe() -> dict:
    return {
        "containerfile": (HERE / "Containerfile").read_text(),
        "server_trims": (HERE / SERVER_TRIMS).read_text(),
        "debootstrap": [f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}", SUITE],
        "versions": versions(),
        "certs": [hashlib.sha256(p.read_bytes()).hexdigest() for p in ca_certs()],
    }


def recipe_hash() -> str:
    blob = json.dumps(recipe(), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def image_name(settings: Settings) -> str:
    """Name of the base image repositories build FROM (``settings.stack.base_image`` if set)."""
    return settings.stack.base_image or f"{settings.registry.host}/bindery/base:{recipe_hash()}"


def digest_file(settings: Settings) -> Path:
    """Where `bindery up` records the digest of the base image it pushed (or verified)."""
    return StackPaths.of(settings).conf / "base-image.digest"


def reference(settings: Settings) -> str:
    """The base image as builds use it: by the digest `bindery up` recorded, so a tag planted or
    overwritten in the registry is never built on; by name when none is recorded yet."""
    name = image_name(settings)
    try:
        digest = digest_file(settings).read_text().strip()
    except OSError:
        return name
    return by_digest(name, digest) if digest.startswith("sha256:") else name


def local_name(h: str) -> str:
    """Registry-independent name used in the build store and the cross-stack cache."""
    return f"localhost/bindery/base:{h}"


def cache_dir(settings: Settings, h: str) -> Path:
    """OCI layout folder (compressed blobs) holding the built image, shared by all stacks."""
    return Path(settings.stack.cache_dir).expanduser() / f"base-{h}.oci"


def _cached(path: Path) -> bool:
    return (path / "index.json").is_file()


def debian_mirror(settings: Settings) -> str:
    """The mirror apt uses (first non-security Debian URI), unless settings name one."""
    if settings.stack.debian_mirror:
        return settings.stack.debian_mirror
    uris: list[str] = []
    files = [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for f in files:
        if not f.is_file() or not (f.name.endswith(".list") or f.name.endswith(".sources")):
            continue
        text = f.read_text(errors="replace")
        if f.name.endswith(".list"):
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if m and "security" not in m.group(2):
                    uris.append(m.group(1))
        else:
            for para in re.split(r"\n\s*\n", text):
                fields = dict(
                    (k.strip().lower(), v.strip())
                    for k, _, v in (ln.partition(":") for ln in para.splitlines() if ":" in ln
                                    and not ln.lstrip().startswith("#"))
                )  # fmt: skip
                if "deb" in fields.get("types", "").split() and "security" not in fields.get(
                    "suites", ""
                ):
                    uris.extend(fields.get("uris", "").split())
    for uri in uris:
        if uri.startswith(("http://", "https://")) and "debian" in uri:
            return uri
    return uris[0] if uris else "http://deb.debian.org/debian"


def _image_exists(settings: Settings, name: str) -> bool:
    return podman.run(settings, "build", ["image", "exists", name], check=False, timeout=60).returncode == 0


def status(settings: Settings) -> dict:
    name = image_name(settings)
    out: dict = {"image": name}
    if not settings.stack.base_image:
        h = recipe_hash()
        out["recipe_hash"] = h
        out["cache"] = str(cache_dir(settings, h))
        out["cached"] = _cached(cache_dir(settings, h))
    try:
        out["in_registry"] = registry.has_image(settings, name, timeout=2.0)
    except Exception:
        out["in_registry"] = None
    out["state"] = {True: "ready", False: "missing", None: "unknown"}[out["in_registry"]]
    return out


def ensure(settings: Settings, log: Callable[[str], None] = print) -> dict:
    """Make sure the base image is in the registry; build, load or push it as needed."""
    name = image_name(settings)
    t0 = time.monotonic()
    current = registry.digest(settings, name)
    try:
        recorded = digest_file(settings).read_text().strip()
    except OSError:
        recorded = ""
    if current is not None and (current == recorded or settings.stack.base_image):
        # the operator's own base (settings.stack.base_image) is verified here, once, by digest
        write_if_changed(digest_file(settings), f"{current}\n")
        return {**status(settings), "source": "registry", "seconds": 0.0}
    if settings.stack.base_image:
        raise StackError(f"base image {name} (settings.stack.base_image) is not in the registry")
    h = recipe_hash()
    local = local_name(h)
    cache = cache_dir(settings, h)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.with_suffix(".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"  waiting for another bindery that is building the base image ({cache})")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if _cached(cache):
            source = "cache"
        else:
            if _image_exists(settings, local):
                source = "build-store"
            else:
                log(f"  building base image {local} (debootstrap + pip, ~2 min)")
                build(settings, h, log)
                source = "built"
            log(f"  saving base image to cache {cache}")
            tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            podman.run(settings, "build", ["push", "-q", local, f"oci:{tmp}:base"], timeout=900)
            shutil.rmtree(cache, ignore_errors=True)
            os.replace(tmp, cache)
    # Copy the compressed blobs straight from the cache into the registry (seconds, no recompression).
    log(f"  pushing {name}")
    env = podman.write_configs(settings, StackPaths.of(settings), "build")
    with tempfile.TemporaryDirectory(prefix="base-push-") as work:
        # the credential in a file of mode 600, never on a command line (ps shows those)
        auth = docker_config(Path(work), settings.registry.host, datadir.registry_credential(settings))
        digest_out = Path(work) / "digest"
        res = process_runner.run(
            [shutil.which("skopeo") or "skopeo", "copy", "-q", "--dest-tls-verify=false",
             "--dest-authfile", str(auth), "--digestfile", str(digest_out),
             f"oci:{cache}:base", f"docker://{name}"],
            env=env, timeout=900,
        )  # fmt: skip
        if res.returncode != 0:
            raise StackError(f"pushing the base image to {settings.registry.url} failed: {res.stderr.strip()}")
        write_if_changed(digest_file(settings), digest_out.read_text().strip() + "\n")
    seconds = round(time.monotonic() - t0, 1)
    log(f"  base image ready ({source}) in {seconds}s")
    return {**status(settings), "source": source, "seconds": seconds}


def build(settings: Settings, h: str, log: Callable[[str], None] = print) -> None:
    mirror = debian_mirror(settings)
    rootfs_image = f"localhost/bindery/rootfs:{h}"
    work = Path(tempfile.mkdtemp(prefix=f"base-{h}-", dir=Path(settings.stack.cache_dir).expanduser()))
    try:
        rootfs = work / "rootfs"
        t = time.monotonic()
        argv = ["debootstrap", f"--variant={VARIANT}", f"--include={','.join(PACKAGES)}",
                SUITE, str(rootfs), mirror]  # fmt: skip
        res = process_runner.run(argv, timeout=1800)
        if res.returncode != 0:
            tail = "\n".join((res.stdout + res.stderr).splitlines()[-15:])
            raise StackError(f"debootstrap from {mirror} failed:\n{tail}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                     "usr/share/man", "usr/share/info"):  # fmt: skip
            shutil.rmtree(rootfs / junk, ignore_errors=True)
            (rootfs / junk).mkdir(parents=True, exist_ok=True)
        log(f"  debootstrap {SUITE} from {mirror}: {time.monotonic() - t:.0f}s")
        t = time.monotonic()
        with process_runner.feeding(["tar", "-C", str(rootfs), "-c", "."], timeout=60) as rootfs_tar:
            podman.run(settings, "build", ["import", "-q", "-", rootfs_image], stdin=rootfs_tar, timeout=600)
        shutil.rmtree(rootfs, ignore_errors=True)
        # Build context: the Containerfile and the host's CA certificates.
        ctx = work / "context"
        (ctx / "certs").mkdir(parents=True)
        shutil.copy(HERE / "Containerfile", ctx / "Containerfile")
        shutil.copy(HERE / SERVER_TRIMS, ctx / SERVER_TRIMS)
        for i, cert in enumerate(ca_certs()):
            shutil.copy(cert, ctx / "certs" / f"{i:02d}-{cert.name}")
        args = ["build", "-q", "--layers=false", "-f", str(ctx / "Containerfile"),
                "-t", local_name(h), "--build-arg", f"ROOTFS={rootfs_image}"]  # fmt: skip
        for k, v in versions().items():
            args += ["--build-arg", f"{k}={v}"]
        res = podman.run(settings, "build", [*args, str(ctx)], check=False, timeout=1800)
        if res.returncode != 0:
            tail = "\n".join((res.stdout + res.stderr).splitlines()[-20:])
            raise StackError(f"building the base image failed:\n{tail}")
        log(f"  Containerfile (pip install): {time.monotonic() - t:.0f}s")
        podman.run(settings, "build", ["rmi", rootfs_image], check=False, timeout=120)
    finally:
        shutil.rmtree(work, ignore_errors=True)
