"""The queues file: the shipped one is fine, and each mistake is refused at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ari_app.cli import main
from ari_app.domain.ivr.flow import Voicemail
from ari_app.domain.live import AlertThresholds
from ari_app.domain.routing.rules import RoutingStep, Strategy
from ari_app.services.queues import read_queues

SHIPPED = Path(__file__).resolve().parents[2] / "dialplan" / "queues.yaml"


def test_the_shipped_queues_are_fine_and_say_what_they_mean(
    capsys: pytest.CaptureFixture[str],
) -> None:
    queues, problems = read_queues(SHIPPED)
    assert problems == []
    assert queues is not None
    billing = queues["billing"]
    assert billing.rules.steps == (
        RoutingStep(20.0, 7),
        RoutingStep(40.0, 4),
        RoutingStep(None, 1, "billing_tier2"),
    )
    assert billing.rules.strategy is Strategy.BEST_SKILL
    assert (billing.service_level.percent, billing.service_level.seconds) == (80, 20)
    assert billing.alerts == AlertThresholds(60.0, 5, 10.0, service_level=True)
    assert queues["support"].alerts == AlertThresholds()  # none
    assert isinstance(billing.on_max_wait, Voicemail)
    assert queues["support"].rules.strategy is Strategy.LONGEST_IDLE
    assert main(["queues", "check", str(SHIPPED)]) == 0
    assert "4 queues are fine" in capsys.readouterr().out


BASE = "queues:\n  q:\n    skills: {billing: 3}\n"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (BASE + "    colour: red\n", 4, "unknown field 'colour'"),
        ("queues:\n  q:\n    skills: {billing: 11}\n", 3, "level must be a whole number"),
        (BASE + "    strategy: random\n", 4, "'strategy' must be one of best_skill"),
        (
            BASE + "    steps:\n      - {overflow: q}\n      - {min_level: 2}\n",
            5,
            "an overflow step must be the last",
        ),
        (
            BASE + "    steps:\n      - {min_level: 7}\n      - {min_level: 2}\n",
            5,
            "every step but the last needs 'seconds'",
        ),
        (BASE + "    steps:\n      - {seconds: 20}\n", 5, "no 'seconds' here"),
        (BASE + "    steps:\n      - {overflow: nowhere}\n", 5, "'nowhere', which is not a queue"),
        (
            BASE + "    steps: [{overflow: r}]\n  r:\n    steps: [{overflow: q}]\n",
            4,
            "overflow loop: q -> r -> q",
        ),
        (BASE + "    max_wait: 60\n", 4, "'max_wait' needs 'on_max_wait'"),
        (
            BASE + "    max_wait: 60\n    on_max_wait: {kind: goto, target: x}\n",
            5,
            "must be a voicemail, transfer, hangup or callback node",
        ),
        (BASE + "    service_level: {percent: 120}\n", 4, "'percent' must be from 1 to 100"),
        (BASE + "    alerts: {waiting: 0}\n", 4, "'waiting' must be from 1 to 10000"),
        (BASE + "    alerts: {longest: 60}\n", 4, "longest"),
        (BASE + "    alerts: {service_level: maybe}\n", 4, "'service_level' must be a bool"),
        (BASE + "    when_no_agents: leave\n", 4, "'when_no_agents: leave' needs 'on_no_agents'"),
        (BASE + "    ring_timeout: 1\n", 4, "'ring_timeout' must be from 5 to 120"),
        ("queues:\n  Billing Line: {}\n", 2, "queue name 'Billing Line'"),
        ("queues: [a, b]\n", 1, "'queues' must be a dict"),
    ],
)
def test_a_broken_queues_file_is_refused_at_its_line(
    tmp_path: Path, text: str, line: int, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "queues.yaml"
    path.write_text(text)
    queues, problems = read_queues(path)
    assert queues is None
    assert any(p.startswith(f"{path}:{line}: ") and reason in p for p in problems), problems
    assert main(["queues", "check", str(path)]) == 1
    assert reason in capsys.readouterr().out
