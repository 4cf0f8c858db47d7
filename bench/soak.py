"""The storage soak: months of distinct repositories, compressed, under budgets of a few GiB.

A stack of its own (under /tmp/soak, free ports, a keeper period of seconds) builds and launches N
distinct repositories through bindery's HTTP API, each a Dockerfile FROM the stack's base image
whose RUN step writes a layer of its own (random bytes: nothing to share, nothing to compress).
Each server is stopped once ready, as a person leaving would. Every few repositories the one
launched least recently is launched again: the keeper may have evicted its image from the run
store (pulled again) or from the registry (built again).

The budgets: the stack first comes up without them, launches one small repository and measures
each store (base image, build image, that launch): the baseline. Then it comes up again on the
same stores with each store's high mark at baseline + ``room``, the budget above it by the high
ratio (store_high_ratio), so the test's small sizes and the bench's large ones evict alike
whatever the base image weighs.

Each store (run engine, build engine, registry) is measured after every launch with its server
running (``du``, as the keeper measures), beside the keeper's own metrics (bindery_store_*).
The home volumes are off (home_resume): they are kept by retention, not by a budget.

Usage: .venv/bin/python bench/soak.py [--repos 300] [--json /tmp/soak/figures.json]
   or: .venv/bin/python bench/run.py --only soak --repos 300
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from common import cleanup
from figures import Figure, table
from prometheus_client.parser import text_string_to_metric_families

from bindery import datadir, http_clients
from bindery import stack as embedded
from bindery.datadir import StackPaths
from bindery.launches.hub_api import Hub
from bindery.registry_client import Registry
from bindery.settings import Settings
from bindery.stack import base_image
from bindery.storage.disk_use import folder_bytes
from tests.conftest import discard_stores, free_port, settings_from_env, stack_env
from tests.gitserver import GitServer
from tests.production.own_stack import FROM_BASE
from tests.streams import collect, git_spec, phases, pulled

MiB = 1024**2
GiB = 1024**3
STORES = ("run", "build", "registry")
ROOT = Path("/tmp/soak")
BUDGET_SETTING = {"run": "run_store_bytes", "build": "build_store_bytes",
                  "registry": "registry_bytes"}


@dataclass(frozen=True)
class Sizing:
    repos: int = 300
    layer_mib: int = 12  # each repository's own layer
    room_mib: int = 600  # per store: from its baseline to its high mark
    relaunch_every: int = 4  # after this many new repositories, one older one again
    period: float = 5.0  # the keeper's (store_clean_interval_seconds)
    grace: float = 30.0  # store_clean_grace_seconds: compressed, as the months are
    build_store_gib: float = 4.0  # the build store's own file system (the hard wall)
    minutes: float | None = None  # no new repositories after this long (a run that must end)


@dataclass
class Soak:
    sizing: Sizing
    baseline: dict[str, int] = field(default_factory=dict)
    budget: dict[str, int] = field(default_factory=dict)  # as the keeper reports them
    high: dict[str, int] = field(default_factory=dict)
    samples: list[dict] = field(default_factory=list)  # after each launch: du and keeper figures
    launches: list[dict] = field(default_factory=list)  # kind, seconds, phases, outcome
    failures: list[str] = field(default_factory=list)
    keeper: dict[str, dict[str, float]] = field(default_factory=dict)  # the last scrape
    base_kept: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0

    def peak(self, store: str) -> int:
        return max((s["du"][store] for s in self.samples), default=0)

    def over_budget(self, store: str) -> list[dict]:
        """Samples where the store took more than its budget (du or the keeper's last pass)."""
        return [s for s in self.samples
                if max(s["du"][store], s["keeper"].get(store, 0)) > self.budget[store]]

    def relaunches(self) -> Counter:
        return Counter(x["kind"] for x in self.launches if x["relaunch"])

    def store_figures(self, store: str) -> dict:
        k = self.keeper
        reclaimed = int(k.get("bindery_store_reclaimed_bytes_total", {}).get(store, 0))
        final = self.samples[-1]["du"][store] if self.samples else self.baseline[store]
        return {"budget": self.budget[store], "high": self.high[store],
                "baseline": self.baseline[store], "peak": self.peak(store), "final": final,
                "written": final - self.baseline[store] + reclaimed, "reclaimed": reclaimed,
                "removed": int(k.get("bindery_store_removed_images_total", {}).get(store, 0)),
                "clean_seconds": k.get("bindery_store_clean_seconds_total", {}).get(store, 0.0),
                "over_budget_samples": len(self.over_budget(store))}

    def to_json(self) -> dict:
        return {"sizing": dataclasses.asdict(self.sizing), "seconds": round(self.seconds, 1),
                "launches": len(self.launches),
                "builds": sum(1 for x in self.launches if "building" in x["phases"]),
                "relaunches": dict(self.relaunches()), "failures": self.failures,
                "base_image_kept": self.base_kept,
                "stores": {s: self.store_figures(s) for s in STORES},
                "samples": self.samples}

    def figures(self) -> list[Figure]:
        n = len(self.launches)
        kinds = self.relaunches()
        out = [Figure("launches (new repositories + relaunches)", n, unit="",
                      note=f"{n - sum(kinds.values())} new, relaunches {dict(kinds)}"),
               Figure("launches failed", len(self.failures), target=0, unit=""),
               Figure("relaunches of evicted images, ready", kinds["pulled again"] + kinds["rebuilt"],
                      unit="", note=f"{kinds['pulled again']} pulled again, {kinds['rebuilt']} "
                      f"rebuilt, {kinds['cached']} still cached"),
               Figure("launch, request -> ready (median)",
                      statistics.median(x["seconds"] for x in self.launches) if n else 0,
                      note="build + push + pull + start, server stopped after")]
        for store in STORES:
            f = self.store_figures(store)
            out += [Figure(f"{store} store: peak use", f["peak"] / GiB, f["budget"] / GiB, 1.0,
                           unit="GiB", note=f"limit: its budget (high mark {f['high'] / GiB:.2f}, "
                           f"baseline {f['baseline'] / GiB:.2f}); {f['over_budget_samples']} of "
                           f"{len(self.samples)} samples over"),
                    Figure(f"{store} store: written / reclaimed", f["written"] / GiB,
                           unit="GiB", note=f"{f['reclaimed'] / GiB:.2f} GiB reclaimed, "
                           f"{f['removed']} images removed"),
                    Figure(f"{store} store: time cleaning", f["clean_seconds"],
                           note=f"of {self.seconds:.0f} s soaked (bindery_store_clean_seconds)")]
        return out


def store_use(settings: Settings) -> dict[str, int]:
    paths = StackPaths.of(settings)
    folders = {"run": paths.store("run"), "build": paths.store("build"),
               "registry": paths.registry_data}
    return {store: folder_bytes(folder) for store, folder in folders.items()}


async def keeper_metrics(settings: Settings, client: httpx.AsyncClient) -> dict[str, dict]:
    """The service's bindery_store_* samples: {sample name: {store: value}}."""
    text = (await client.get(f"{settings.service.web_url.rstrip('/')}/metrics")).text
    out: dict[str, dict] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("bindery_store_") and "store" in sample.labels:
                out.setdefault(sample.name, {})[sample.labels["store"]] = sample.value
    return out


class Driver:
    """Launches through the HTTP API, sampling the stores after each."""

    def __init__(self, settings: Settings, soak: Soak) -> None:
        self.settings, self.soak = settings, soak
        self.hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 30)
        self.registry = Registry(settings.registry.url, 10, 3,
                                 datadir.registry_credential(settings))
        self.client = http_clients.async_client(timeout=30)

    async def aclose(self) -> None:
        for closing in (self.hub, self.registry, self.client):
            await closing.aclose()

    async def launch(self, url: str, image: str | None = None) -> str | None:
        """Launch ``url`` to ready, sample the stores, stop its server; the image it ran.
        ``image``: a relaunch of this image (where it was beforehand says what kind)."""
        where = {}
        if image:
            where = {"run": await asyncio.to_thread(pulled, self.settings, image),
                     "registry": await self.registry.image_exists(image)}
        started = time.monotonic()
        events = await collect(self.settings, "git", git_spec(url, "main"))
        seconds = time.monotonic() - started
        last = events[-1]
        kind = ("new" if not image else "rebuilt" if "building" in phases(events) else
                "pulled again" if not where["run"] else "cached")
        self.soak.launches.append({"url": url, "relaunch": bool(image), "kind": kind,
                                   "before": where, "seconds": round(seconds, 2),
                                   "phases": sorted(set(phases(events))), "outcome": last.phase})
        if last.phase != "ready":
            self.soak.failures.append(f"{url}: {last.message}")
            return None
        await self.sample(url)
        await cleanup(self.hub, [last.data()["user"]])
        return last.data()["image"]

    async def sample(self, label: str) -> None:
        use = await asyncio.to_thread(store_use, self.settings)
        self.soak.keeper = await keeper_metrics(self.settings, self.client)
        seen = {s: int(v) for s, v in self.soak.keeper.get("bindery_store_bytes", {}).items()}
        self.soak.samples.append({"after": label, "at": round(time.time(), 1), "du": use,
                                  "keeper": seen})

    async def soak_all(self, git: GitServer, on_line=print) -> None:
        sizing = self.soak.sizing
        images: dict[str, str] = {}  # url -> image, least recently launched first
        started = time.monotonic()
        for n in range(1, sizing.repos + 1):
            if sizing.minutes and time.monotonic() - started > 60 * sizing.minutes:
                on_line(f"  [soak] stopped after {n - 1} repositories: {sizing.minutes} min")
                break
            # a step of its own: the same step text on the same base would be the build cache's
            step = f"RUN head -c {sizing.layer_mib}M /dev/urandom > $HOME/.soak-layer-{n}"
            _, url = git.create(f"soak-{n}", {"Dockerfile": f"{FROM_BASE}{step}\n"})
            if (image := await self.launch(url)) is not None:
                images[url] = image
            if n % sizing.relaunch_every == 0 and len(images) > 1:
                old, image = next(iter(images.items()))
                del images[old]
                if (image := await self.launch(old, image)) is not None:
                    images[old] = image
            if n % 10 == 0 or n == sizing.repos:
                on_line(f"  [soak] {n}/{sizing.repos} repositories, {len(self.soak.launches)} "
                        f"launches, {len(self.soak.failures)} failed, use "
                        f"{ {s: round(b / GiB, 2) for s, b in self.soak.samples[-1]['du'].items()} }"
                        f" after {time.monotonic() - started:.0f} s")
        self.soak.seconds = time.monotonic() - started


@contextlib.contextmanager
def up(settings: Settings) -> Iterator[Settings]:
    try:
        embedded.up(settings, log=lambda m: print(f"  [stack] {m}", file=sys.stderr))
        yield settings
    finally:
        embedded.down(settings, log=lambda m: None)


async def run_soak(sizing: Sizing, root: Path = ROOT, on_line=print) -> Soak:
    """The whole soak on a stack of its own under ``root``, removed afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    data_dir = root / f"stack-{free_port()}"
    git = GitServer(data_dir.with_name(data_dir.name + "-git"), free_port())
    git.root.mkdir()
    git.start()
    env = stack_env(data_dir, github_url=git.base_url, gitlab_url=git.base_url,
                    gist_url=git.base_url, home_resume=False, max_servers_per_repo=1000,
                    build_store_size=int(sizing.build_store_gib * GiB),
                    store_clean_interval_seconds=sizing.period,
                    store_clean_grace_seconds=sizing.grace)
    soak = Soak(sizing)
    try:
        with up(settings_from_env(env)) as settings:  # the baseline: base images, one launch
            driver = Driver(settings, soak)
            try:
                _, url = git.create("soak-baseline", {"Dockerfile": FROM_BASE})
                if await driver.launch(url) is None:
                    raise RuntimeError(f"the baseline launch failed: {soak.failures}")
            finally:
                await driver.aclose()
            soak.baseline = await asyncio.to_thread(store_use, settings)
            soak.samples.clear()
            soak.launches.clear()
            ratio = settings.stack.store_high_ratio
        for store, used in soak.baseline.items():
            env[f"BINDERY_{BUDGET_SETTING[store].upper()}"] = \
                str(int((used + sizing.room_mib * MiB) / ratio))
        with up(settings_from_env(env)) as settings:
            driver = Driver(settings, soak)
            try:
                await driver.sample("start")
                for store in STORES:
                    soak.budget[store] = int(soak.keeper["bindery_store_budget_bytes"][store])
                    soak.high[store] = int(soak.keeper["bindery_store_high_mark_bytes"][store])
                on_line(f"  [soak] baseline {soak.baseline}, budgets {soak.budget}")
                await driver.soak_all(git, on_line)
                await driver.sample("end")
                base = base_image.image_name(settings)
                soak.base_kept = {"run": await asyncio.to_thread(pulled, settings, base),
                                  "registry": await driver.registry.image_exists(base)}
            finally:
                await driver.aclose()
    finally:
        git.stop()
        discard_stores(data_dir)
        for side in ("run", "build"):
            shutil.rmtree(StackPaths.of(settings_from_env(env)).runroot(side), ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(git.root, ignore_errors=True)
    return soak


def report(soak: Soak, json_path: Path) -> str:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(soak.to_json(), indent=1))
    return f"{table(soak.figures())}\n\nfigures (JSON, every sample): {json_path}"


async def figures_own(quick: bool, repos: int | None = None) -> list[Figure]:
    """bench/run.py's entry: the soak brings its own stack (its budgets are its own)."""
    sizing = Sizing(repos=repos or (20 if quick else Sizing.repos))
    soak = await run_soak(sizing)
    print(report(soak, ROOT / "figures.json"), file=sys.stderr)
    return soak.figures()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=Sizing.repos)
    parser.add_argument("--layer-mib", type=int, default=Sizing.layer_mib)
    parser.add_argument("--room-mib", type=int, default=Sizing.room_mib)
    parser.add_argument("--minutes", type=float, default=None,
                        help="make no new repositories after this long")
    parser.add_argument("--json", type=Path, default=ROOT / "figures.json")
    args = parser.parse_args()
    sizing = Sizing(repos=args.repos, layer_mib=args.layer_mib, room_mib=args.room_mib,
                    minutes=args.minutes)
    print(report(asyncio.run(run_soak(sizing)), args.json))


if __name__ == "__main__":
    main()
