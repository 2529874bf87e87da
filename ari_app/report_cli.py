"""`ari-app report`: the KPIs of a window from the database, as a table, CSV or JSON."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
from datetime import datetime
from typing import Any

from ari_app.adapters.db import engine_for
from ari_app.adapters.kpi_store import KpiStore
from ari_app.services.kpis import KpiReports, ReportAsk, ReportRefused, targets_of
from ari_app.services.queues import read_queues
from ari_app.settings import load

QUEUE_COLUMNS = (
    "queue", "offered", "handled", "abandoned", "short_abandoned", "blocked", "service_level",
    "asa", "average_wait", "longest_wait", "aht", "average_wrap_up", "fcr", "blocked_rate",
)  # fmt: skip
AGENT_COLUMNS = (
    "agent_id", "handled", "aht", "average_wrap_up", "handling_seconds", "staffed_seconds",
    "occupancy",
)  # fmt: skip


def _when(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _rows(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(kind, figures) for the window, then for each interval."""
    rows = []
    for part in [body, *body.get("intervals", [])]:
        window = f"{part['from'].isoformat()} .. {part['to'].isoformat()}"
        rows += [("queue", {"window": window, **q}) for q in part["queues"]]
        rows += [("agent", {"window": window, **a}) for a in part["agents"]]
        rows.append(("ivr", {"window": window, **part["ivr"]}))
    return rows


def render(body: dict[str, Any], form: str) -> str:
    if form == "json":
        return json.dumps(body, default=str, indent=2)
    rows = _rows(body)
    if form == "csv":
        out = io.StringIO()
        columns = ["kind", "window", *dict.fromkeys(k for _, r in rows for k in r if k != "window")]
        writer = csv.DictWriter(out, columns, extrasaction="ignore")
        writer.writeheader()
        for kind, row in rows:
            writer.writerow({"kind": kind, **row})
        return out.getvalue()
    lines = []
    for kind, columns in (("queue", QUEUE_COLUMNS), ("agent", AGENT_COLUMNS)):
        table = [["window", *columns]] + [
            [row["window"], *(_cell(row[c]) for c in columns)] for k, row in rows if k == kind
        ]
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        lines += [
            "  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True)) for line in table
        ]
        lines.append("")
    for kind, row in rows:
        if kind == "ivr":
            lines.append(
                f"IVR {row['window']}: {row['entered']} entered, {row['contained']} contained "
                f"({_cell(row['containment'])} %)"
            )
    return "\n".join(lines) + "\n"


async def _report(args: argparse.Namespace) -> dict[str, Any]:
    settings = load(args.env_file)
    queues, problems = read_queues(settings.queues_file)
    if queues is None:
        raise ReportRefused(f"the queues file is refused: {'; '.join(problems)}")
    targets = targets_of(queues, settings)
    engine = engine_for(settings.database_url)
    try:
        reports = KpiReports(KpiStore(engine), lambda: targets)
        return await reports.report(
            ReportAsk(args.start, args.end, args.queue, args.agent, args.interval)
        )
    finally:
        await engine.dispose()


def report(args: argparse.Namespace) -> int:
    try:
        body = asyncio.run(_report(args))
    except ReportRefused as exc:
        print(f"ari-app: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(body, args.format))
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "report", help="the KPIs of a window (definitions: ari_app/domain/kpi.py)"
    )
    parser.add_argument(
        "--from", dest="start", type=_when, required=True, help="ISO 8601, with zone"
    )
    parser.add_argument("--to", dest="end", type=_when, required=True, help="ISO 8601, with zone")
    parser.add_argument("--queue", default=None)
    parser.add_argument("--agent", default=None)
    parser.add_argument("--interval", type=int, choices=(15, 30, 60), default=None)
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.set_defaults(handler=report)
