"""`ari-app prompts build` and `ari-app demo-backend`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ari_app.adapters.speech import SpeechError, check_tools
from ari_app.services.prompts import build, read_prompt_file
from ari_app.settings import load_local_asterisk


def build_prompts(args: argparse.Namespace) -> int:
    prompts_dir = load_local_asterisk(args.env_file).prompts_dir
    files = [Path(f) for f in args.files] or sorted(prompts_dir.glob("*.yaml"))
    if not files:
        print(f"ari-app: error: no prompt files (*.yaml) in {prompts_dir}")
        return 1
    sets, failed = [], False
    for path in files:
        prompt_set, problems = read_prompt_file(path)
        for problem in problems:
            print(problem)
        failed = failed or prompt_set is None
        if prompt_set is not None:
            sets.append(prompt_set)
    if failed:
        return 1
    try:
        check_tools()
        folder_for = _destination(args)
        report = build(sets, folder_for)
    except (SpeechError, _NoDestination) as exc:
        print(f"ari-app: error: {exc}")
        return 1
    print(
        f"prompts: {len(report.made)} spoken, {len(report.kept)} unchanged, "
        f"{len(report.removed)} removed"
    )
    for label in report.made:
        print(f"  spoken  {label}")
    for label in report.removed:
        print(f"  removed {label}")
    return 0


class _NoDestination(Exception):
    pass


def _destination(args: argparse.Namespace) -> Callable[[str], Path]:
    """Where LANGUAGE/ari-app/ goes. Asterisk lists new sounds at once (ARI GET /sounds
    looks at the folders each time), so nothing needs a reload afterwards."""
    if args.out:
        out = Path(args.out)
        return lambda language: out / language
    from ari_app.adapters.asterisk_local import LocalAsterisk

    local = LocalAsterisk(load_local_asterisk(args.env_file))
    if not local.has_root():
        raise _NoDestination(
            "the local Asterisk is not built yet (ari-app asterisk build), "
            "or give --out DIR to write the files elsewhere"
        )
    return local.sounds_dir


def demo_backend(args: argparse.Namespace) -> int:
    import uvicorn

    from ari_app.demo_backend import create_demo_backend

    uvicorn.run(create_demo_backend(), host="127.0.0.1", port=args.port, log_level="warning")
    return 0


def add_parsers(commands: Any) -> None:
    prompts = commands.add_parser("prompts", help="the project's own prompts")
    actions = prompts.add_subparsers(dest="action", required=True)
    build_cmd = actions.add_parser(
        "build",
        help="speak the prompt files (default: *.yaml of ARI_APP_ASTERISK_PROMPTS_DIR, "
        "dialplan/prompts) into 8 kHz WAV files",
    )
    build_cmd.add_argument("files", nargs="*")
    build_cmd.add_argument(
        "--out",
        default=None,
        help="write OUT/LANGUAGE/ari-app/NAME.wav (for another Asterisk's sounds folder) "
        "instead of into the local Asterisk",
    )
    build_cmd.set_defaults(handler=build_prompts)
    backend = commands.add_parser(
        "demo-backend", help="serve the demo flow's balance lookup on 127.0.0.1"
    )
    backend.add_argument("--port", type=int, default=8090)
    backend.set_defaults(handler=demo_backend)
