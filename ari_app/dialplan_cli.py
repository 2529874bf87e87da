"""`ari-app dialplan check|deploy`: the dialplan in `dialplan/`, checked against what
the center needs and the applications of the connected Asterisk, then installed with
a way back (see ari_app/adapters/dialplan_deploy.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ari_app.settings import load

EXIT_PROBLEMS = 1


async def _run(args: argparse.Namespace) -> int:
    from ari_app.adapters.ami import AmiClient, AmiLoginFailed
    from ari_app.adapters.dialplan_deploy import DeployFailed, DialplanInstaller
    from ari_app.services.dialplan import DialplanDesk, DialplanRefused

    settings = load(args.env_file)
    source = Path(args.dir) if args.dir else settings.dialplan_dir
    ami = AmiClient(
        settings.ami_host,
        settings.ami_port,
        settings.ami_user,
        settings.ami_password.get_secret_value(),
        events="off",
    )
    offline = args.action == "check" and args.offline
    try:
        if offline:
            desk = DialplanDesk(source, settings.ari_application, settings.flows_dir)
            return _said(await desk.check(), source)
        async with ami.session():
            config_dir = settings.asterisk_config_dir
            installer = DialplanInstaller(ami, config_dir or Path("/nonexistent"))
            desk = DialplanDesk(source, settings.ari_application, settings.flows_dir, installer)
            if args.action == "check":
                return _said(await desk.check(), source)
            if config_dir is None:
                raise DialplanRefused(["ARI_APP_ASTERISK_CONFIG_DIR is not set: nowhere to deploy"])
            checked = await desk.deploy()
    except (OSError, TimeoutError, AmiLoginFailed) as exc:
        print(f"ari-app: error: AMI at {settings.ami_host}:{settings.ami_port}: {exc!r}"
              " (check --offline checks without it)", file=sys.stderr)  # fmt: skip
        return EXIT_PROBLEMS
    except DialplanRefused as exc:
        for problem in exc.problems:
            print(problem)
        print(f"refused: nothing was installed ({len(exc.problems)} problems)", file=sys.stderr)
        return EXIT_PROBLEMS
    except DeployFailed as exc:
        for problem in exc.problems:
            print(problem)
        back = (
            "the dialplan before is in force again"
            if exc.restored
            else "AND COULD NOT PUT THE DIALPLAN BEFORE BACK"
        )
        print(f"deploy failed: {back}", file=sys.stderr)
        return EXIT_PROBLEMS
    contexts = len(checked.plan.contexts)
    print(f"deployed {', '.join(sorted(checked.files))}: {contexts} contexts loaded and verified")
    return 0


def _said(checked: Any, source: Path) -> int:
    for problem in checked.problems:
        print(problem)
    if checked.problems:
        return EXIT_PROBLEMS
    print(f"{source}: {len(checked.plan.contexts)} contexts, no problem")
    return 0


def dialplan(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("dialplan", help="check and deploy the dialplan ops edit")
    actions = parser.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "check", help="every problem as file:line; the applications asked of Asterisk (AMI)"
    )
    check.add_argument("--offline", action="store_true", help="without Asterisk's applications")
    check.add_argument("--dir", help="the dialplan folder (ARI_APP_DIALPLAN_DIR)")
    deploy = actions.add_parser(
        "deploy",
        help="check, install into ARI_APP_ASTERISK_CONFIG_DIR, reload, verify; "
        "the files before come back if anything fails",
    )
    deploy.add_argument("--dir", help="the dialplan folder (ARI_APP_DIALPLAN_DIR)")
    parser.set_defaults(handler=dialplan)
