"""An operator's first look beyond the processes: each store's disk use against its budget, the
build queue, the warm pools (as the running service measures them, from its /metrics) and the last
failed launches with their launch ids (from the state store)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bindery.settings import Settings
from bindery.stack.web_service import local_url
from bindery.state import failure_log, open_store

FIGURES = {  # metric -> (section, field)
    "bindery_build_queue_length": ("queue", "waiting"),
    "bindery_build_slots_used": ("queue", "building"),
    "binderhub_inprogress_launches": ("queue", "launches"),
    "bindery_pool_size": ("pools", "servers"),
    "bindery_pool_free": ("pools", "free"),
    "bindery_pool_wanted": ("pools", "wanted"),
}
STORE_FIGURES = {"bindery_store_bytes": "used", "bindery_store_budget_bytes": "budget",
                 "bindery_store_high_mark_bytes": "high"}


def service_figures(settings: Settings, timeout: float = 3.0) -> dict[str, Any]:
    """What the running service measures; {} when it does not answer."""
    try:
        text = httpx.get(local_url(settings) + "/metrics", timeout=timeout).text
    except httpx.HTTPError:
        return {}
    out: dict[str, Any] = {"storage": {}, "queue": {}, "pools": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in FIGURES:
                section, field = FIGURES[sample.name]
                out[section][field] = int(sample.value)
            elif sample.name in STORE_FIGURES:
                store = out["storage"].setdefault(sample.labels.get("store", "?"), {})
                store[STORE_FIGURES[sample.name]] = int(sample.value)
    return out


def last_failures(settings: Settings) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        store = open_store(settings)
        try:
            return await failure_log.recent(store)
        finally:
            await store.aclose()

    try:
        return asyncio.run(read())
    except Exception as exc:  # the store is down: say so rather than fail the whole status
        return [{"error": f"state store: {type(exc).__name__}: {exc}"}]


def overview(settings: Settings) -> dict[str, Any]:
    return {**service_figures(settings), "failures": last_failures(settings)}


def lines(view: dict[str, Any]) -> list[str]:
    """The overview as the lines `bindery status` prints."""
    out = []
    for store, figures in sorted(view.get("storage", {}).items()):
        used, budget = figures.get("used"), figures.get("budget", 0)
        share = f"{100 * used / budget:.0f}%" if used is not None and budget else "?"
        measured = _size(used) if used is not None else "not measured yet"
        out.append(f"  store {store:<8} {measured} of {_size(budget)} ({share}; cleaned above "
                   f"{_size(figures.get('high', 0))})")
    queue = view.get("queue")
    if queue:
        out.append(f"queue      {queue.get('waiting', 0)} builds waiting, {queue.get('building', 0)}"
                   f" building, {queue.get('launches', 0)} launches under way")
    pools = view.get("pools")
    if pools:
        out.append(f"pools      {pools.get('free', 0)} free of {pools.get('servers', 0)} servers "
                   f"({pools.get('wanted', 0)} wanted)")
    failures = view.get("failures") or []
    out.append(f"last failures ({len(failures)}):" if failures else "last failures: none")
    for failure in failures[:10]:
        if "error" in failure:
            out.append(f"  {failure['error']}")
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(failure.get("at", 0)))
        out.append(f"  {when} launch {failure.get('launch_id', '?')} {failure.get('repo', '')} "
                   f"{failure.get('ref', '')} [{failure.get('phase', '')}]: "
                   f"{failure.get('reason', '')[:160]}")
    return out


def _size(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} TiB"
