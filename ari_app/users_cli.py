"""`ari-app users`: add, list, change and remove the admin API's users; mint and revoke
their tokens. Each change writes an audit row, as the API does."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from ari_app.domain.users import ADMIN, LONGEST_TOKEN_LIFE, ROLES, TOKEN_DAYS, UserRefused
from ari_app.settings import load

EXIT_REFUSED = 1


@asynccontextmanager
async def _directory(args: argparse.Namespace) -> AsyncIterator[Any]:
    """The user directory over the service's database (brought to the newest schema)."""
    from ari_app.adapters.agent_store import AgentStore
    from ari_app.adapters.ari import AriRest
    from ari_app.adapters.db import TokenStore, engine_for, migrate
    from ari_app.adapters.monitor_store import SupervisorStore
    from ari_app.adapters.user_store import AuditStore, UserStore
    from ari_app.services.supervisors import SupervisorDirectory
    from ari_app.services.users import UserDirectory

    settings = load(args.env_file)
    migrate(settings.database_url)
    engine = engine_for(settings.database_url)
    tokens, users = TokenStore(engine), UserStore(engine)
    # the phones' directory answers the supervisors' teams; nothing here asks Asterisk
    ari = AriRest(settings.ari_url, settings.ari_user, settings.ari_password.get_secret_value())
    supervisors = SupervisorDirectory(SupervisorStore(engine), tokens, ari, users)
    try:
        yield UserDirectory(users, tokens, AgentStore(engine), supervisors), AuditStore(engine)
    finally:
        await ari.aclose()
        await engine.dispose()


async def _audited(
    args: argparse.Namespace, action: str, change: Callable[[Any], Awaitable[str]]
) -> str:
    """Make the change and write its audit row (the CLI acts as an admin would)."""
    from ari_app.services.users import UserNotFound

    async with _directory(args) as (directory, audit):
        before = await directory.describe(args.user_id)
        row = {
            "actor": f"cli {getpass.getuser()}"[:80],
            "role": ADMIN,
            "action": f"cli users {action}",
            "target": args.user_id,
            "asked": {k: v for k, v in vars(args).items() if k in _ASKED and v is not None},
            "before": before,
        }
        try:
            said = await change(directory)
        except (UserRefused, UserNotFound, _Exists) as exc:
            outcome = (
                404 if isinstance(exc, UserNotFound) else 409 if isinstance(exc, _Exists) else 422
            )
            await audit.add(
                _finished(row, outcome, _why(exc), await directory.describe(args.user_id))
            )
            raise
        await audit.add(_finished(row, 200, None, await directory.describe(args.user_id)))
        return said


_ASKED = ("name", "role", "teams", "days", "label", "token_id")


def _finished(row: dict[str, Any], outcome: int, detail: str | None, after: Any) -> dict[str, Any]:
    return {**row, "outcome": outcome, "detail": detail, "after": after, "at": datetime.now(UTC)}


class _Exists(Exception):
    pass


def _why(exc: Exception) -> str:
    from ari_app.services.users import UserNotFound

    if isinstance(exc, UserNotFound):
        return f"no user {exc}"
    if isinstance(exc, _Exists):
        return f"user {exc} already exists"
    return str(exc)


async def _add(directory: Any, args: argparse.Namespace) -> str:
    from ari_app.adapters.user_store import UserExists

    try:
        user = await directory.create(args.user_id, args.name, args.role, args.teams or [])
    except UserExists:
        raise _Exists(args.user_id) from None
    teams = f" of {', '.join(user.teams)}" if user.teams else ""
    return f"added {user.id} ({user.name}), {user.role}{teams}"


async def _change(directory: Any, args: argparse.Namespace) -> str:
    user = await directory.update(args.user_id, args.name, args.role, args.teams)
    teams = f" of {', '.join(user.teams)}" if user.teams else ""
    return f"{user.id} ({user.name}) is {user.role}{teams}"


async def _remove(directory: Any, args: argparse.Namespace) -> str:
    revoked = await directory.delete(args.user_id)
    return f"removed {args.user_id}; {revoked} tokens revoked"


async def _token(directory: Any, args: argparse.Namespace) -> str:
    row, token = await directory.mint(args.user_id, args.label or "", args.days)
    print(f"token {row.id} for {args.user_id}, expires {row.expires_at:%Y-%m-%d %H:%M} UTC "
          "(shown once; only its hash is kept):", file=sys.stderr)  # fmt: skip
    return token


async def _revoke(directory: Any, args: argparse.Namespace) -> str:
    revoked = await directory.revoke(args.user_id, args.token_id)
    if args.token_id is not None and not revoked:
        raise UserRefused(f"{args.user_id} has no live token {args.token_id}")
    return f"{revoked} tokens of {args.user_id} revoked"


async def _list(args: argparse.Namespace) -> str:
    async with _directory(args) as (directory, _):
        users = await directory.find(10_000)
        lines = []
        for user in users:
            live = [t for t in await directory.tokens_of(user.id) if _live(t)]
            teams = f" teams={','.join(user.teams)}" if user.teams else ""
            lines.append(f"{user.id}\t{user.role}\t{user.name}{teams}\tlive tokens: {len(live)}")
    return "\n".join(lines) or "no users"


def _live(token: Any) -> bool:
    now = datetime.now(UTC)
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


CHANGES = {"add": _add, "change": _change, "remove": _remove, "token": _token, "revoke": _revoke}


def users(args: argparse.Namespace) -> int:
    from ari_app import logs
    from ari_app.services.users import UserNotFound

    logs.configure("warning")  # stdout carries the answer alone (a token, for a script)
    try:
        if args.action == "list":
            said = asyncio.run(_list(args))
        else:
            change = CHANGES[args.action]
            said = asyncio.run(_audited(args, args.action, lambda d: change(d, args)))
    except (UserRefused, UserNotFound, _Exists) as exc:
        print(f"ari-app: error: {_why(exc)}", file=sys.stderr)
        return EXIT_REFUSED
    print(said)
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("users", help="the admin API's users and their tokens")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a user (an agent user is the agent of that id)")
    add.add_argument("user_id")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--team", dest="teams", action="append", help="a supervisor's; repeat")
    change = actions.add_parser("change", help="change a user's name, role or teams")
    change.add_argument("user_id")
    change.add_argument("--name")
    change.add_argument("--role", choices=ROLES)
    change.add_argument("--team", dest="teams", action="append", help="the teams, all of them")
    remove = actions.add_parser("remove", help="remove a user; their tokens are revoked")
    remove.add_argument("user_id")
    token = actions.add_parser("token", help="mint a token (printed once, on stdout)")
    token.add_argument("user_id")
    token.add_argument("--days", type=_days, default=float(TOKEN_DAYS))
    token.add_argument("--label", help="what the token is for (shown in the audit)")
    revoke = actions.add_parser("revoke", help="revoke a user's tokens (or one, by its id)")
    revoke.add_argument("user_id")
    revoke.add_argument("--token-id", type=int)
    actions.add_parser("list", help="the users, their roles and live tokens")
    parser.set_defaults(handler=users, user_id=None)


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not 0 < days <= LONGEST_TOKEN_LIFE.days:
        raise argparse.ArgumentTypeError(f"more than 0 and at most {LONGEST_TOKEN_LIFE.days} days")
    return days
