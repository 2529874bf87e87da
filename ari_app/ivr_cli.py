"""`ari-app ivr check` and `ari-app ivr simulate`."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ari_app.domain.ivr.simulate import simulate
from ari_app.services.flows import check_file


def check(args: argparse.Namespace) -> int:
    failed = False
    for path in args.files:
        flow, problems = check_file(Path(path))
        for problem in problems:
            print(problem)
        if flow is None:
            failed = True
        else:
            print(
                f"{path}: flow '{flow.name}' version {flow.version} is fine "
                f"({len(flow.nodes)} nodes)"
            )
    return 1 if failed else 0


def _lookup_answers(items: list[str]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for item in items:
        node, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"ari-app: error: --lookup takes NODE=JSON, not {item!r}")
        try:
            answers[node] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"ari-app: error: --lookup {node}: not JSON ({exc})") from exc
    return answers


def simulate_file(args: argparse.Namespace) -> int:
    flow, problems = check_file(Path(args.file))
    for problem in problems:
        print(problem)
    if flow is None:
        return 1
    try:
        at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    except ValueError:
        print(f"ari-app: error: --at {args.at!r} is not a date and time such as 2026-11-24T10:00")
        return 2
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    digits = [d.strip() for d in args.digits.split(",") if d.strip()] if args.digits else []
    bad = [d for d in digits for ch in d if ch not in "0123456789*#_"]
    if bad:
        print(f"ari-app: error: --digits takes keys 0-9 * # and _ (a pause), not {bad[0]!r}")
        return 2
    keys = [ch for d in digits for ch in d]  # "123456" presses six keys
    transcript = simulate(flow, args.caller, at, keys, _lookup_answers(args.lookup))
    print("\n".join(transcript.lines))
    return 0


def add_parser(commands: Any) -> None:
    ivr = commands.add_parser("ivr", help="IVR flows: check and simulate")
    actions = ivr.add_subparsers(dest="action", required=True)
    check_cmd = actions.add_parser("check", help="check flow files; exit 1 on any problem")
    check_cmd.add_argument("files", nargs="+")
    check_cmd.set_defaults(handler=check)
    sim = actions.add_parser("simulate", help="walk a flow with a scripted caller, no Asterisk")
    sim.add_argument("file")
    sim.add_argument("--caller", default="5551234", help="the calling number")
    sim.add_argument("--at", default=None, help="when the call happens (ISO 8601; default now)")
    sim.add_argument(
        "--digits",
        default="",
        help='keys pressed in order, e.g. "1,123456#"; _ lets a timer run out',
    )
    sim.add_argument(
        "--lookup",
        action="append",
        default=[],
        metavar="NODE=JSON",
        help="the answer of a lookup node; lookups without one fail",
    )
    sim.set_defaults(handler=simulate_file)
