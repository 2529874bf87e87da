"""`python -m tests.bench.load`: run the load benchmark on its own Asterisk instance."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

from ari_app.adapters.asterisk_local import LocalAsterisk
from ari_app.settings import LocalAsteriskSettings
from tests.bench.load.run import SMOKE, Plan, benchmark, profile_service
from tests.bench.load.table import table

RESULTS = Path(__file__).resolve().parents[1] / "results"
# the benchmark's own Asterisk: its own ports and a wide RTP range (four ports a call)
BENCH_ASTERISK = {
    "ARI_APP_ASTERISK_INSTANCE": "bench",
    "ARI_APP_ASTERISK_SIP_PORT": "35060",
    "ARI_APP_ASTERISK_HTTP_PORT": "38088",
    "ARI_APP_ASTERISK_AMI_PORT": "35038",
    "ARI_APP_ASTERISK_RTP_START": "40000",
    "ARI_APP_ASTERISK_RTP_END": "49999",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few calls at 1 call/s")
    parser.add_argument("--agents", type=int, help="agents per center")
    parser.add_argument("--talk", type=float, help="seconds each call talks")
    parser.add_argument("--max-rate", type=float, help="no step above this rate")
    parser.add_argument("--database-url", help="B's database (default: an SQLite file)")
    parser.add_argument("--out", type=Path, default=RESULTS / "load.json", help="the JSON")
    parser.add_argument(
        "--profile", type=Path, help="B alone at --rate under py-spy: folded stacks here"
    )
    parser.add_argument("--rate", type=float, default=4.0, help="the rate --profile runs at")
    parser.add_argument("--work", type=Path, help="keep the SIPp logs and the database here")
    parser.add_argument(
        "--reuse-asterisk",
        action="store_true",
        help="use the instance the environment names (ARI_APP_ASTERISK_*) as it runs",
    )
    args = parser.parse_args()
    plan = SMOKE if args.smoke else Plan()
    changes = {
        "agents": args.agents,
        "talk": args.talk,
        "max_rate": args.max_rate,
        "database_url": args.database_url,
    }
    plan = dataclasses.replace(plan, **{k: v for k, v in changes.items() if v is not None})
    if not args.reuse_asterisk:
        os.environ.update(BENCH_ASTERISK)
    asterisk = LocalAsterisk(LocalAsteriskSettings())
    if not args.reuse_asterisk:
        asterisk.down()
        # a fresh start: no phones left in Asterisk's database by an earlier run
        (asterisk.instance_dir / "lib" / "astdb.sqlite3").unlink(missing_ok=True)
        asterisk.up()
    try:
        with tempfile.TemporaryDirectory(prefix="ari-app-load-") as work:
            folder = args.work or Path(work)
            folder.mkdir(parents=True, exist_ok=True)
            if args.profile:
                profiled = profile_service(asterisk, plan, folder, args.rate, args.profile)
                trial = asyncio.run(profiled)
                print(json.dumps(trial.summary(), indent=2))
                return
            report = asyncio.run(benchmark(asterisk, plan, folder))
    finally:
        if not args.reuse_asterisk:
            asterisk.down()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
