"""`ari-app config check|apply FILE` and `ari-app config export`: the whole center as one
YAML document, through the running service's API (it holds what is in force, and applies
a change in one transaction). The token is read from ARI_APP_TOKEN; problems point at
the file's lines."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ari_app.settings import load

EXIT_PROBLEMS = 1
EXIT_UNREACHABLE = 2


def add_parser(commands: Any) -> None:
    config = commands.add_parser("config", help="the center as code: check, apply, export")
    actions = config.add_subparsers(dest="action", required=True)
    for name, said in (
        ("check", "what applying FILE would change, or its problems; nothing changes"),
        ("apply", "check FILE, show the changes, make them all in one transaction or none"),
    ):
        action = actions.add_parser(name, help=said)
        action.add_argument("file", help="a YAML document: teams, skills, agents, queues, "
                            "flows, numbers (each optional)")  # fmt: skip
    export = actions.add_parser("export", help="the whole center as YAML, on stdout")
    export.add_argument("--output", "-o", help="write it to this file instead")
    for action in (actions.choices["check"], actions.choices["apply"], export):
        action.add_argument("--url", help="the service's API (default: from the settings)")
    actions.choices["check"].add_argument(
        "--offline",
        action="store_true",
        help="the document alone, without the service (for a pipeline): every section it "
        "names must be given; new numbers are checked against the dialplan folder",
    )
    config.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    import httpx

    settings = load(args.env_file)
    if args.action == "check" and args.offline:
        return _offline(Path(args.file), settings)
    url = args.url or f"http://{settings.api_host}:{settings.api_port}"
    token = os.environ.get("ARI_APP_TOKEN", "")
    if not token:
        print("ari-app: error: set ARI_APP_TOKEN to an admin's or ops user's token",
              file=sys.stderr)  # fmt: skip
        return EXIT_UNREACHABLE
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            if args.action == "export":
                return _export(client, args.output)
            return _send(client, args.action, Path(args.file))
    except httpx.HTTPError as exc:
        print(f"ari-app: error: the service at {url}: {exc!r}", file=sys.stderr)
        return EXIT_UNREACHABLE


def _export(client: Any, output: str | None) -> int:
    import yaml

    reply = client.get("/api/v1/config")
    if reply.status_code != 200:
        return _failed(reply)
    text = yaml.safe_dump(reply.json(), sort_keys=False, allow_unicode=True)
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _send(client: Any, action: str, path: Path) -> int:
    from ari_app.adapters import flow_files

    document = flow_files.read(path)
    if document.problems:
        for problem in document.problems:
            print(problem)
        return EXIT_PROBLEMS
    reply = client.post(f"/api/v1/config/{action}", json=document.data)
    if reply.status_code == 422:
        problems = reply.json().get("problems") or [
            f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in reply.json()["errors"]
        ]
        for problem in problems:
            print(_located(document, problem))
        print(f"refused: nothing was changed ({len(problems)} problems)", file=sys.stderr)
        return EXIT_PROBLEMS
    if reply.status_code != 200:
        return _failed(reply)
    said = reply.json()
    for line in said["diff"]:
        print(line)
    for agent, password in sorted(said.get("passwords", {}).items()):
        print(f"agent {agent}: SIP password {password} (shown this once)")
    done = "would change" if action == "check" else "changed"
    print(f"{done}: {len(said['diff'])} item(s)" if said["diff"] else "nothing to change",
          file=sys.stderr)  # fmt: skip
    return 0


def _offline(path: Path, settings: Any) -> int:
    """The document checked against an empty center: what applying it to a new center
    would do (the service's state, stored versions and busy items are not known)."""
    from ari_app.adapters import flow_files
    from ari_app.domain.center import Center, InForce, plan
    from ari_app.domain.ivr.check import load_flow
    from ari_app.services.center import located
    from ari_app.services.dialplan import DialplanDesk

    document = flow_files.read(path)
    if document.problems:
        for problem in document.problems:
            print(problem)
        return EXIT_PROBLEMS
    dialplan = DialplanDesk(settings.dialplan_dir, settings.ari_application, settings.flows_dir)
    found = plan(document.data, InForce(Center(), {}, {}, reached=dialplan.reaches), load_flow)
    for problem in found.problems:
        print(_located(document, located(problem)))
    if found.problems:
        print(f"refused ({len(found.problems)} problems)", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"fine: {len(found.changes)} item(s), checked alone", file=sys.stderr)
    return 0


def _located(document: Any, problem: str) -> str:
    """`agents.anna.team: no team 'x'` as `FILE:LINE: agents.anna.team: no team 'x'`."""
    from ari_app.domain.ivr.flow import Problem

    where, _, _ = problem.partition(": ")
    keys = where.split(".")
    found = document.locate(Problem(tuple(keys), problem))
    listed = tuple(int(k) if k.isdigit() else k for k in keys)  # an item of a list
    if listed != tuple(keys):
        other = document.locate(Problem(listed, problem))
        found = other if other.line > found.line else found
    return str(found)


def _failed(reply: Any) -> int:
    try:
        detail = reply.json().get("detail", reply.text)
    except ValueError:
        detail = reply.text
    print(f"ari-app: error: {reply.status_code} {detail}", file=sys.stderr)
    return EXIT_PROBLEMS
