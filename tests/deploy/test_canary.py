"""The canary exports metrics and logs loudly after consecutive failures."""

from __future__ import annotations

import logging

from bindery.deploy.canary import Canary
from bindery.backoff import Backoff
from bindery.deploy.verify import Target

from .fakes import PUBLIC, FakeMachine

A = "0.1.dev4+gaaaaaaaaaaaa"


def test_canary_metrics_and_loud_log(caplog) -> None:  # noqa: ANN001
    m = FakeMachine(starting_polls=0)
    m.switch(m.start(A, 19585))
    alerts: list[str] = []
    with m.client() as client:
        canary = Canary("prod", Target(f"http://127.0.0.1:{PUBLIC}", A, "git/canary/HEAD"), client,
                        alert_after=2, backoff=Backoff(attempts=1), on_alert=alerts.append)
        assert all(c.ok for c in canary.round())
        reg = canary.metrics.registry
        assert reg.get_sample_value("bindery_canary_success", {"instance": "prod"}) == 1
        m.broken_launch.add(A)
        with caplog.at_level(logging.WARNING, logger="bindery.deploy.canary"):
            canary.round()
            assert not alerts
            canary.round()
        assert canary.failures == 2 and len(alerts) == 1 and "CANARY FAILING on prod" in alerts[0]
        assert any(r.levelno == logging.ERROR for r in caplog.records)
        assert reg.get_sample_value("bindery_canary_consecutive_failures", {"instance": "prod"}) == 2
        assert reg.get_sample_value("bindery_canary_launches_total", {"instance": "prod", "status": "failure"}) == 2
        m.broken_launch.clear()
        canary.round()
        assert canary.failures == 0
        assert reg.get_sample_value("bindery_canary_launch_seconds_count",
                                    {"instance": "prod", "status": "success"}) == 2
