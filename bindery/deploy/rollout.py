"""A bounded wait for every rollout of a Helm release (kubernetes_asyncio), with the pods' reasons when it ends red.

Why every workload, not only bindery's Deployment: a release that upgraded the web Deployment but whose Redis
StatefulSet never became ready is not deployed (the second seed's lesson: `helm upgrade` returning is not the
rollout being done). The objects are found by the label every object of the chart carries,
``app.kubernetes.io/instance=<release>``.

Done means, as ``kubectl rollout status`` judges it: the controller has seen the newest spec
(``observedGeneration >= generation``) and the updated, ready and available counts all equal the desired count
(Deployment and StatefulSet ``spec.replicas``, DaemonSet ``desiredNumberScheduled``), with no old pods left over.
When the bound passes, the message names each unfinished object with its counts and the reasons its pods give
(ImagePullBackOff, CrashLoopBackOff, Unschedulable …), classified real or transient by bindery/deploy/classify.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from bindery.backoff import Backoff
from bindery.deploy.classify import CheckFailed, classify_rollout, classify_status
from bindery.kube_client import REQUEST_TIMEOUT, Cluster, api_client

INSTANCE_LABEL = "app.kubernetes.io/instance"




@dataclass
class WorkloadState:
    """One Deployment/StatefulSet/DaemonSet of the release, judged."""

    kind: str
    name: str
    done: bool
    counts: str  # "updated 1/2, ready 1/2, available 1/2 (generation 3 observed 3)"
    selector: str = ""  # its pods' label selector
    reasons: list[str] = field(default_factory=list)  # "pod web-7d9f-x: ImagePullBackOff (Back-off pulling …)"
    codes: list[str] = field(default_factory=list)  # the bare reasons ("ImagePullBackOff"), for classification

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


def _judge(kind: str, obj: Any) -> WorkloadState:
    meta, spec, status = obj.metadata, obj.spec, obj.status
    generation, observed = meta.generation or 0, status.observed_generation or 0
    if kind == "DaemonSet":
        desired = status.desired_number_scheduled or 0
        updated, ready = status.updated_number_scheduled or 0, status.number_ready or 0
        available, total = status.number_available or 0, status.current_number_scheduled or 0
    else:
        desired = 1 if spec.replicas is None else spec.replicas
        updated, ready = status.updated_replicas or 0, status.ready_replicas or 0
        available, total = status.available_replicas or 0, status.replicas or 0
    done = (observed >= generation and updated == desired and ready == desired and available == desired
            and total == desired)
    if kind == "StatefulSet" and status.update_revision and status.current_revision != status.update_revision:
        done = done and desired == 0
    counts = (f"updated {updated}/{desired}, ready {ready}/{desired}, available {available}/{desired}"
              + (f", {total - desired} old pods left" if total > desired else "")
              + (f" (generation {generation} observed {observed})" if observed < generation else ""))
    labels = (spec.selector.match_labels or {}) if spec.selector else {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return WorkloadState(kind, meta.name, done, counts, selector)


def pod_reasons(pod: Any) -> list[tuple[str, str]]:
    """Why ``pod`` is not ready, as (reason, message) pairs: waiting/terminated containers, unschedulable."""
    found: list[tuple[str, str]] = []
    status = pod.status
    for cond in status.conditions or []:
        if cond.type == "PodScheduled" and cond.status == "False":
            found.append((cond.reason or "Unschedulable", cond.message or ""))
    for cs in [*(status.init_container_statuses or []), *(status.container_statuses or [])]:
        state = cs.state
        if state and state.waiting and state.waiting.reason:
            found.append((state.waiting.reason, state.waiting.message or ""))
        elif state and state.terminated and state.terminated.reason and state.terminated.reason != "Completed":
            found.append((state.terminated.reason, state.terminated.message or ""))
        last = cs.last_state.terminated if cs.last_state else None
        if last and last.reason == "OOMKilled":
            found.append(("OOMKilled", f"exit {last.exit_code}"))
    return found


class RolloutWatch:
    """Reads the release's workloads and their pods through one API client."""

    def __init__(self, api: client.ApiClient, namespace: str, release: str,
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.release = release
        self.timeout = request_timeout

    async def workloads(self) -> list[WorkloadState]:
        selector = f"{INSTANCE_LABEL}={self.release}"
        kw = {"label_selector": selector, "_request_timeout": self.timeout}
        lists = await asyncio.gather(
            self.apps.list_namespaced_deployment(self.namespace, **kw),
            self.apps.list_namespaced_stateful_set(self.namespace, **kw),
            self.apps.list_namespaced_daemon_set(self.namespace, **kw),
        )
        return [_judge(kind, obj) for kind, items in zip(("Deployment", "StatefulSet", "DaemonSet"), lists)
                for obj in items.items]

    async def explain(self, workload: WorkloadState) -> None:
        """Fill in why ``workload``'s pods are not ready (its selector's pods)."""
        if not workload.selector:
            return
        pods = await self.core.list_namespaced_pod(self.namespace, label_selector=workload.selector,
                                                   _request_timeout=self.timeout)
        for pod in pods.items:
            for reason, message in pod_reasons(pod):
                workload.codes.append(reason)
                workload.reasons.append(f"pod {pod.metadata.name}: {reason}"
                                        + (f" ({message[:200]})" if message else ""))


async def wait_rollout(watch: RolloutWatch, timeout: float, *, poll: float = 1.0, poll_cap: float = 5.0,
                       say: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Return when every workload of the release is rolled out; raise CheckFailed when ``timeout`` passes.

    API trouble (refused, timeouts, 5xx) is retried until the bound; a 4xx (403: the credentials may not read the
    namespace) ends the wait at once."""
    start = time.monotonic()
    last_error: CheckFailed | None = None
    states: list[WorkloadState] = []
    pauses = Backoff(first=poll, factor=1.5, cap=poll_cap)
    polls = 0
    while True:
        polls += 1
        try:
            states = await watch.workloads()
            last_error = None
            if not states:
                raise CheckFailed.real(
                    f"no Deployment, StatefulSet or DaemonSet labelled {INSTANCE_LABEL}={watch.release} in namespace "
                    f"{watch.namespace}: nothing to wait for (does the chart label its objects?)")
            pending = [s for s in states if not s.done]
            if not pending:
                return {"workloads": {s.label: s.counts for s in states},
                        "seconds": round(time.monotonic() - start, 1)}
            say(f"rollout: waiting for {', '.join(f'{s.label} ({s.counts})' for s in pending)}")
        except ApiException as exc:
            verdict = classify_status(exc.status or 500, f"Kubernetes API ({exc.reason})", body=str(exc.body or ""))
            if verdict is not None and verdict.kind == "real":
                raise verdict from None
            last_error = verdict
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            last_error = CheckFailed.transient(f"Kubernetes API unreachable: {type(exc).__name__}: {exc}")
        waited = time.monotonic() - start
        if waited >= timeout:
            break
        await asyncio.sleep(min(pauses.delay(polls), max(timeout - waited, 0.0)))  # a poll interval
    if last_error is not None and not states:
        raise CheckFailed(last_error.kind, f"rollout of {watch.release} not confirmed within {timeout:g} s: "
                          f"{last_error.reason}", last_error.evidence)
    pending = [s for s in states if not s.done]
    for s in pending:
        try:
            await watch.explain(s)
        except (ApiException, aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            s.reasons = [f"pods unreadable: {type(exc).__name__}"]
    parts = [f"{s.label} ({s.counts})" + (": " + "; ".join(s.reasons[:5]) if s.reasons else ": no pod reports "
                                           "a reason (still starting?)") for s in pending]
    kind = classify_rollout([code for s in pending for code in s.codes])
    raise CheckFailed(kind, f"rollout of {watch.release} not done within {timeout:g} s: " + " | ".join(parts),
                      {"pending": {s.label: {"counts": s.counts, "reasons": s.reasons} for s in pending},
                       "done": [s.label for s in states if s.done]})


async def wait_release(cluster: Cluster, namespace: str, release: str, timeout: float,
                       say: Callable[[str], None] = lambda m: None, poll: float = 1.0) -> dict[str, Any]:
    api = await api_client(cluster)
    async with api:
        return await wait_rollout(RolloutWatch(api, namespace, release, cluster.request_timeout), timeout,
                                  poll=poll, say=say)
