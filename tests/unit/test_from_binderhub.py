"""`bindery settings from-binderhub FILE`: a binderhub_config.py (run by traitlets, as BinderHub runs
it) or BinderHub's chart values carried over to bindery settings, with what has no equivalent listed;
run as a person runs the command."""

from __future__ import annotations

import json
import subprocess
import sys

from bindery.cli import main

CONFIG_PY = '''
c.BinderHub.cors_allow_origin = "https://book.example.org"
c.BinderHub.hub_url = "https://hub.example.org/"
c.BinderHub.image_prefix = "registry.example.org/binder/prod-"
c.BinderHub.pod_quota = 300
c.BinderHub.per_repo_quota = 100
c.BinderHub.per_repo_quota_higher = 200
c.BinderHub.build_memory_limit = "4G"
c.BinderHub.concurrent_build_limit = 8
c.BinderHub.banner_message = "Welcome"
c.BinderHub.ban_networks = {"203.0.113.0/24": "abuse"}
c.GitHubRepoProvider.banned_specs = ["^ines/spacy-binder.*", "crypto-miner"]
c.GitHubRepoProvider.high_quota_specs = ["^jupyterlab/jupyterlab-demo.*"]
c.GitHubRepoProvider.access_token = "ghp_secret"
c.Launcher.retries = 4
'''

VALUES_YAML = '''
config:
  BinderHub:
    hub_url: https://hub.example.org
    use_registry: true
    image_prefix: registry.example.org/binder/staging-
    enable_api_only_mode: false
  GitLabRepoProvider:
    hostname: git.example.org
registry:
  url: https://registry.example.org
  username: builder
  password: hunter2
jupyterhub:
  hub:
    config:
      BinderSpawner:
        cors_allow_origin: "*"
  cull:
    timeout: 900
    maxAge: 14400
  singleuser:
    memory: {limit: 2G}
extraConfig:
  something: "print(1)"
'''


def run(*args: str) -> subprocess.CompletedProcess:
    """The command as a person runs it (one process start costs seconds: used once)."""
    return subprocess.run([sys.executable, "-m", "bindery", "settings", "from-binderhub", *args],
                          capture_output=True, text=True, timeout=120)


def cli(capsys, *args: str) -> subprocess.CompletedProcess:
    """The same command in this process."""
    code = main(["settings", "from-binderhub", *args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def test_a_binderhub_config_py(tmp_path, capsys):
    path = tmp_path / "binderhub_config.py"
    path.write_text(CONFIG_PY)
    out = cli(capsys, str(path), "--json", "--show-secrets")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["settings"] == {
        "cors_allow_origin": "https://book.example.org",
        "hub_url": "https://hub.example.org",
        "registry_url": "https://registry.example.org", "image_prefix": "binder/prod-",
        "max_servers": 300, "max_servers_per_repo": 100, "build_memory_limit": "4G",
        "build_slots": 8, "blocked_networks": ["203.0.113.0/24"],
        "banned_specs": ["^gh/(?:ines/spacy-binder.*)", "^gh/.*(?:crypto-miner)"],
        "quota_tiers": {"^gh/(?:jupyterlab/jupyterlab-demo.*)": 200},
        "git_credentials": {"https://github.com/": "ghp_secret"},
        "launch_retries": 4,
    }
    assert result["no_equivalent"] == ["BinderHub.banner_message"]
    # The env form, secrets hidden unless asked for.
    text = run(str(path)).stdout
    assert "BINDERY_MAX_SERVERS=300" in text.splitlines()
    assert 'BINDERY_BANNED_SPECS=["^gh/(?:ines/spacy-binder.*)", "^gh/.*(?:crypto-miner)"]' in text
    assert "ghp_secret" not in text and "BINDERY_GIT_CREDENTIALS=<secret" in text
    assert "#   BinderHub.banner_message" in text


def test_the_charts_values(tmp_path, capsys):
    path = tmp_path / "values.yaml"
    path.write_text(VALUES_YAML)
    out = cli(capsys, str(path), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["settings"] == {
        "hub_url": "https://hub.example.org", "registry_url": "https://registry.example.org",
        "image_prefix": "binder/staging-", "api_only": False, "gitlab_url": "https://git.example.org",
        "cors_allow_origin": "*", "cull_idle_seconds": 900, "cull_max_age_seconds": 14400,
        "server_mem_limit": "2G"}
    # Registry credentials and use_registry have no bindery setting here: listed, not dropped.
    assert set(result["no_equivalent"]) == {"BinderHub.use_registry", "chart: registry_username",
                                            "chart: registry_password"}


def test_bad_files_get_a_clear_error(tmp_path, capsys):
    missing = cli(capsys, str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    broken = tmp_path / "binderhub_config.py"
    broken.write_text("from binderhub.repoproviders import GitHubRepoProvider\n")
    out = cli(capsys, str(broken))
    assert out.returncode == 2 and "ModuleNotFoundError" in out.stderr
    assert "Traceback" not in out.stderr
    invalid = tmp_path / "bad.py"
    invalid.write_text("c.BinderHub.pod_quota = 'lots'\n")
    out = cli(capsys, str(invalid))
    assert out.returncode == 2 and "not a value bindery can take" in out.stderr
    unparsed = tmp_path / "values.yaml"
    unparsed.write_text("config: [unclosed\n")
    assert cli(capsys, str(unparsed)).returncode == 2
