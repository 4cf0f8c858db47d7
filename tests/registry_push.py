"""Writing an image into a registry straight over its HTTP API, as an attacker (or a test) would:
a config blob, one layer, a manifest under a tag. Returns the manifest's digest."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import httpx


def layer(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def push_image(client: httpx.Client, base_url: str, repo: str, tag: str,
               files: dict[str, bytes]) -> httpx.Response:
    """Upload a one-layer image as ``repo:tag``; the manifest PUT's response (201 when written)."""
    blob = layer(files)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()]},
        "config": {"Cmd": ["/planted"]}}).encode()
    for data in (blob, config):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = client.post(f"{base_url}/v2/{repo}/blobs/uploads/")
        if start.status_code != 202:
            return start
        location = start.headers["location"]
        location = location if location.startswith("http") else base_url + location
        location += ("&" if "?" in location else "?") + f"digest={digest}"
        done = client.put(location, content=data,
                          headers={"Content-Type": "application/octet-stream"})
        if done.status_code != 201:
            return done
    manifest = {"schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "size": len(config), "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                            "size": len(blob), "digest": "sha256:" + hashlib.sha256(blob).hexdigest()}]}
    return client.put(f"{base_url}/v2/{repo}/manifests/{tag}", content=json.dumps(manifest),
                      headers={"Content-Type": manifest["mediaType"]})
