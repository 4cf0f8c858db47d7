"""Homes on Kubernetes: the chart renders KubeSpawner's storage values (ConfigMap) and bindery's home
settings; the hook documented for z2jh turns a launch's home into a PVC, a volume, its mount and a
confined merge init container, and the objects it makes pass the Kubernetes API schemas. No
Kubernetes API server runs here: KubeSpawner is stood in for by a spawner with its trait names, run
through JupyterHub's own apply_user_options path, and the objects are checked against the schemas."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest

from bindery import home_merge
from tests.kubernetes.chart import everything, named
from tests.kubernetes.test_chart_z2jh import z2jh_values

HOME = "bindery-home-r" + "0123456789abcdef0123456789"


def homes_configmap() -> dict:
    return named(everything(), "ConfigMap", "-kubespawner-homes")


def test_chart_renders_kubespawner_storage_values_and_bindery_settings() -> None:
    data = homes_configmap()["data"]
    storage = json.loads(data["storage.json"])
    assert storage == {"pvc_prefix": "bindery-home-", "storage_capacity": "2048Mi",
                       "storage_class": "fast-ssd", "storage_access_modes": ["ReadWriteOnce"],
                       "mount_path": "/home/jovyan", "home_owner": {"uid": 1000, "gid": 100}}
    # the merge the init container runs is bindery's own, unchanged
    assert data["home_merge.py"] == Path(home_merge.__file__).read_text()
    [container] = named(everything(), "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["BINDERY_HOME_RESUME"], env["BINDERY_HOME_SIZE_MB"],
            env["BINDERY_HOME_RETENTION_DAYS"]) == ("true", "2048", "14")
    # z2jh's hub mounts this ConfigMap where the documented hook reads it
    hub = z2jh_values()["hub"]
    assert hub["extraVolumes"][0]["configMap"]["name"].endswith("-bindery-kubespawner-homes")
    assert hub["extraVolumeMounts"][0]["mountPath"] == "/etc/bindery-homes"


@pytest.fixture
def hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A spawner factory with the documented hook, reading the chart's rendered ConfigMap."""
    from jupyterhub.spawner import LocalProcessSpawner
    from traitlets import Any, Bool, Dict, Integer, List, Unicode
    from traitlets.config import Config

    for key, text in homes_configmap()["data"].items():
        (tmp_path / key).write_text(text)
    monkeypatch.setenv("BINDERY_HOMES_DIR", str(tmp_path))
    c = Config()
    exec(compile(z2jh_values()["hub"]["extraConfig"]["bindery-images"], "extraConfig", "exec"),
         {"c": c})

    class KubeSpawner(LocalProcessSpawner):  # KubeSpawner's storage traits, by their names
        image = Unicode("default/image:1")
        pvc_name = Unicode("")
        storage_pvc_ensure = Bool(False)
        storage_capacity = Unicode(None, allow_none=True)
        storage_class = Unicode(None, allow_none=True)
        storage_access_modes = List(["ReadWriteOnce"])
        volumes = List()
        volume_mounts = List()
        init_containers = List()
        fs_gid = Integer(None, allow_none=True)
        extra = Dict()
        unused = Any()

    return lambda: KubeSpawner(config=c, user=SimpleNamespace(name="u", url="/user/u/"))


async def test_a_home_becomes_a_pvc_mounted_after_a_confined_merge(hook) -> None:
    spawner = hook()
    await spawner._run_apply_user_options({"image": "registry.example.org/bindery/x:1",
                                           "bindery_home": HOME})
    assert (spawner.pvc_name, spawner.storage_pvc_ensure, spawner.storage_capacity,
            spawner.storage_class) == (HOME, True, "2048Mi", "fast-ssd")
    [volume] = spawner.volumes
    assert volume["persistentVolumeClaim"]["claimName"] == HOME
    assert spawner.volume_mounts == [{"name": volume["name"], "mountPath": "/home/jovyan"}]
    [merge] = spawner.init_containers
    assert merge["image"] == "registry.example.org/bindery/x:1"  # the server's own image
    assert merge["command"][:3] == ["python3", "-I", "-c"]
    assert merge["command"][-2:] == ["/home/jovyan", "/bindery-home"]
    security = merge["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]} and security["runAsNonRoot"]
    assert not security["allowPrivilegeEscalation"] and security["readOnlyRootFilesystem"]
    # What KubeSpawner makes of these: a PVC and a pod, valid for the Kubernetes API.
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": HOME},
           "spec": {"accessModes": spawner.storage_access_modes,
                    "storageClassName": spawner.storage_class,
                    "resources": {"requests": {"storage": spawner.storage_capacity}}}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "jupyter-u"},
           "spec": {"securityContext": {"fsGroup": spawner.fs_gid},
                    "initContainers": spawner.init_containers, "volumes": spawner.volumes,
                    "containers": [{"name": "notebook", "image": spawner.image,
                                    "volumeMounts": spawner.volume_mounts}]}}
    for obj in (pvc, pod):
        kubernetes_validate.validate(obj, "1.28", strict=True)


async def test_a_start_without_a_home_has_none_and_a_forged_home_is_refused(hook) -> None:
    from tornado import web

    plain = hook()
    await plain._run_apply_user_options({"image": "registry.example.org/bindery/x:1"})
    assert plain.volumes == [] and plain.init_containers == [] and plain.pvc_name == ""
    for bad in ("hub-db-dir", "bindery-home-../x", 42, "bindery-home-" + "A" * 20):
        refused = hook()
        with pytest.raises(web.HTTPError) as err:
            await refused._run_apply_user_options({"image": "registry.example.org/bindery/x:1",
                                                   "bindery_home": bad})
        assert err.value.status_code == 400
