"""The published @jupyterhub/binderhub-client, unmodified, drives a real launch to ready and the
server answers <url>api?token=... with 200 (protocol notes in test_binderhub_client.py)."""

from __future__ import annotations

from .test_binderhub_client import needs_client, run_client


@needs_client
def test_published_client_launches_on_the_stack(stack, git_repo_factory):
    path, url = git_repo_factory("npmclient", "RUN echo built-for-the-npm-client")
    code, result = run_client(stack.service.web_url, f"gh/{path}/main", "lab", timeout=900)
    assert code == 0, result
    assert result["phases"][-1] == "ready" and result["api_status"] == 200
    ready = result["ready"]
    assert ready["url"].endswith("/") and ready["token"]
    assert ready["repo_url"] == url
    assert result["redirect"] == f"{ready['url']}lab?token={ready['token']}"
