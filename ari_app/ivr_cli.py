"""`ari-app ivr check`, `ari-app ivr simulate` and `ari-app ivr reload`."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ari_app.domain.ivr.simulate import simulate
from ari_app.domain.ivr.sounds import SoundCatalog
from ari_app.services.flows import check_file
from ari_app.settings import SettingsError, load


def _asterisk_sounds(args: argparse.Namespace) -> tuple[SoundCatalog | None, str]:
    """The sounds of the Asterisk the settings name, or why there are none to check against."""
    if args.offline:
        return None, "prompts not checked against Asterisk (--offline)"
    try:
        settings = load(args.env_file)
    except SettingsError as exc:
        return None, f"prompts not checked against Asterisk: {exc}"
    auth = (settings.ari_user, settings.ari_password.get_secret_value())
    try:
        reply = httpx.get(f"{settings.ari_url}/ari/sounds", auth=auth, timeout=5.0)
        reply.raise_for_status()
        catalog = SoundCatalog.from_ari(reply.json())
    except (httpx.HTTPError, ValueError) as exc:
        return (
            None,
            f"prompts not checked: the Asterisk at {settings.ari_url} did not answer ({exc})",
        )
    return catalog, f"prompts checked against the {len(catalog)} sounds of {settings.ari_url}"


def check(args: argparse.Namespace) -> int:
    failed = False
    catalog, checked = _asterisk_sounds(args)
    print(checked)
    sound_exists = catalog.has if catalog is not None else None
    for path in args.files:
        flow, problems = check_file(Path(path), sound_exists)
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


def reload(args: argparse.Namespace) -> int:
    """Ask the running service to reload its flows, through the admin API."""
    settings = load(args.env_file)
    api = args.api or f"http://{settings.api_host}:{settings.api_port}"
    token = args.token or os.environ.get("ARI_APP_TOKEN", "")
    if not token:
        print("ari-app: error: give the admin token with --token or ARI_APP_TOKEN")
        return 2
    try:
        reply = httpx.post(
            f"{api}/api/v1/ivr/reload",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
        )
    except httpx.HTTPError as exc:
        print(f"ari-app: error: the service at {api} did not answer ({exc})")
        return 1
    if reply.status_code != 200:
        print(f"ari-app: error: the service at {api} answered {reply.status_code}: {reply.text}")
        return 1
    report = reply.json()
    for line in report["loaded"]:
        print(f"loaded  {line}")
    for line in report["kept"]:
        print(f"kept    {line} (its new file was refused)")
    for line in report["problems"]:
        print(line)
    print(report["prompts_checked"])
    return 1 if report["problems"] else 0


def add_parser(commands: Any) -> None:
    ivr = commands.add_parser("ivr", help="IVR flows: check, simulate, reload")
    actions = ivr.add_subparsers(dest="action", required=True)
    check_cmd = actions.add_parser("check", help="check flow files; exit 1 on any problem")
    check_cmd.add_argument("files", nargs="+")
    check_cmd.add_argument(
        "--offline",
        action="store_true",
        help="do not check prompts against the sounds of the Asterisk the settings name",
    )
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
    reload_cmd = actions.add_parser(
        "reload", help="make the running service load the flow files again (as SIGHUP does)"
    )
    reload_cmd.add_argument("--api", default=None, help="the service's admin API (from settings)")
    reload_cmd.add_argument("--token", default=None, help="admin token (or ARI_APP_TOKEN)")
    reload_cmd.set_defaults(handler=reload)
