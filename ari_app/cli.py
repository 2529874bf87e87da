"""The `ari-app` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ari_app.settings import (
    REPO_DIR,
    LocalAsteriskSettings,
    SettingsError,
    load,
    load_local_asterisk,
)

EXIT_BAD_SETTINGS = 2
EXIT_FAILED = 1


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"ari-app: error: {message}", file=sys.stderr)
    return code


def _asterisk(args: argparse.Namespace) -> int:
    from ari_app.adapters.asterisk_conf import TemplateError
    from ari_app.adapters.asterisk_local import LocalAsterisk, LocalAsteriskError

    local = LocalAsterisk(load_local_asterisk(args.env_file))
    try:
        if args.action == "up":
            status = local.up()
            print(status.describe())
            print(f"settings for the service: {local.env_file}")
        elif args.action == "down":
            print("stopped" if local.down() else "was not running")
        elif args.action == "status":
            status = local.status()
            print(status.describe())
            return 0 if status.running else 3
        elif args.action == "cli":
            print(local.cli(" ".join(args.command)), end="")
        elif args.action == "build":
            print(local.ensure_root())
        elif args.action == "env":
            print(local.env_file)
        elif args.action == "render":
            _render_for_existing(local.settings, Path(args.out))
    except (LocalAsteriskError, TemplateError) as exc:
        return _fail(str(exc))
    return 0


def _render_for_existing(settings: LocalAsteriskSettings, out: Path) -> None:
    """Write the config files an existing Asterisk needs, with the service's own passwords."""
    from ari_app.adapters.asterisk_conf import LOCAL_ONLY, render_tree, template_values

    passwords = {}
    for name in ("ARI_APP_ARI_PASSWORD", "ARI_APP_AMI_PASSWORD"):
        passwords[name] = os.environ.get(name, "")
        if not passwords[name]:
            raise SettingsError(f"{name}: is not set (the rendered config uses it)")
    values = template_values(
        settings,
        ari_password=passwords["ARI_APP_ARI_PASSWORD"],
        ami_password=passwords["ARI_APP_AMI_PASSWORD"],
    )
    files = render_tree([settings.conf_dir, settings.dialplan_dir], values, skip=LOCAL_ONLY)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
        (out / name).chmod(0o600)
    print(f"wrote {len(files)} files to {out}")


def _run(args: argparse.Namespace) -> int:
    from ari_app.app import StartupError, run

    settings = load(args.env_file)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings.event_loop)) as runner:
            runner.run(run(settings))
    except StartupError as exc:
        return _fail(str(exc), EXIT_BAD_SETTINGS if exc.setting else EXIT_FAILED)
    except KeyboardInterrupt:
        return 0
    return 0


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None  # asyncio's own


def _migrate(args: argparse.Namespace) -> int:
    from ari_app.adapters.db import migrate

    migrate(load(args.env_file).database_url)
    print("database is at the newest schema")
    return 0


def _queues_check(args: argparse.Namespace) -> int:
    from ari_app.services.queues import read_queues

    queues, problems = read_queues(Path(args.file))
    for problem in problems:
        print(problem)
    if queues is None:
        return 1
    print(f"{args.file}: {len(queues)} queues are fine ({', '.join(sorted(queues))})")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ari-app", description=__doc__)
    top.add_argument(
        "--env-file", type=Path, default=None, help="read ARI_APP_* settings from this file too"
    )
    commands = top.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the service")
    run.set_defaults(handler=_run)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(handler=_migrate)

    asterisk = commands.add_parser("asterisk", help="the project's own local Asterisk")
    actions = asterisk.add_subparsers(dest="action", required=True)
    actions.add_parser("up", help="build if needed, render config, start, wait for ARI")
    actions.add_parser("down", help="stop this instance's Asterisk")
    actions.add_parser("status", help="running or not; exit 3 when stopped")
    cli = actions.add_parser(
        "cli", help='run an Asterisk CLI command, e.g. cli "core show channels"'
    )
    cli.add_argument("command", nargs="+")
    actions.add_parser("build", help="build (or reuse) the cached Asterisk root")
    actions.add_parser("env", help="print the path of the settings file for the service")
    render = actions.add_parser(
        "render", help="write config for an existing Asterisk (passwords from ARI_APP_*_PASSWORD)"
    )
    render.add_argument("out")
    asterisk.set_defaults(handler=_asterisk)

    queues = commands.add_parser("queues", help="the ACD's queues")
    queue_actions = queues.add_subparsers(dest="action", required=True)
    queue_check = queue_actions.add_parser(
        "check", help="check a queues file; every problem as file:line, exit 1 on any"
    )
    queue_check.add_argument("file", nargs="?", default=str(REPO_DIR / "dialplan" / "queues.yaml"))
    queue_check.set_defaults(handler=_queues_check)

    from ari_app import config_cli, dialplan_cli, ivr_cli, prompts_cli, report_cli, users_cli

    ivr_cli.add_parser(commands)
    prompts_cli.add_parsers(commands)
    report_cli.add_parser(commands)
    users_cli.add_parser(commands)
    dialplan_cli.add_parser(commands)
    config_cli.add_parser(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except SettingsError as exc:
        return _fail(str(exc), EXIT_BAD_SETTINGS)
