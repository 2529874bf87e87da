"""The project's own Asterisk: a Debian-unstable root built with mmdebstrap, run chrooted.

One root per package list is cached under the home folder and shared; each
instance (dev, test, ...) has its own tree inside it (`/srv/ari-app/<name>`)
with its own config, ports, secrets, logs and pid, so instances never collide.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from ari_app.adapters.asterisk_conf import render_tree, template_values
from ari_app.settings import LocalAsteriskSettings

MMDEBSTRAP_OPTIONS = ("--variant=apt", '--aptopt=Acquire::Check-Valid-Until "false"')
ROOT_MARKER = ".ari-app-root.json"


class LocalAsteriskError(Exception):
    """The local Asterisk could not be built, started or reached; the message says why."""


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    ari_answers: bool
    instance_dir: Path

    def describe(self) -> str:
        if not self.running:
            return f"stopped ({self.instance_dir})"
        ari = "ARI answers" if self.ari_answers else "ARI does not answer"
        return f"running, pid {self.pid}, {ari} ({self.instance_dir})"


def root_key(settings: LocalAsteriskSettings) -> str:
    """The cache key of a root: a new package list, suite or mirror builds a new root."""
    spec = {
        "packages": sorted(settings.packages),
        "suite": settings.suite,
        "mirror": settings.mirror,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _runs_asterisk_in(instance_dir: Path) -> bool:
    try:
        pid = int((instance_dir / "run" / "asterisk.pid").read_text().strip())
        return Path(f"/proc/{pid}").exists()
    except (FileNotFoundError, ValueError):
        return False


def _alive(pid: int) -> bool:
    """Whether the process still runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state != "Z"


class LocalAsterisk:
    """Build, render, start, stop and query one instance of the local Asterisk."""

    def __init__(self, settings: LocalAsteriskSettings) -> None:
        self.settings = settings
        self.root = settings.home / f"root-{root_key(settings)}"
        self.inside_dir = Path("/srv/ari-app") / settings.instance
        self.instance_dir = self.root / self.inside_dir.relative_to("/")
        self.pid_file = self.instance_dir / "run" / "asterisk.pid"  # written by Asterisk
        self.env_file = self.instance_dir / "ari-app.env"
        self.console_log = self.instance_dir / "log" / "console.log"

    # -- the root ---------------------------------------------------------------

    def ensure_root(self) -> Path:
        """Build the root unless a complete one for this package list is cached."""
        with _locked(self.settings.home / ".build.lock"):
            if (self.root / ROOT_MARKER).exists():
                return self.root
            if shutil.which("mmdebstrap") is None:
                raise LocalAsteriskError(
                    "mmdebstrap is not installed: apt-get install mmdebstrap (make deps does it)"
                )
            building = self.root.with_name(self.root.name + ".building")
            shutil.rmtree(building, ignore_errors=True)
            command = [
                "mmdebstrap",
                *MMDEBSTRAP_OPTIONS,
                "--include=" + ",".join(self.settings.packages),
                self.settings.suite,
                str(building),
                self.settings.mirror,
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                shutil.rmtree(building, ignore_errors=True)
                tail = " | ".join(done.stderr.strip().splitlines()[-3:])
                raise LocalAsteriskError(f"mmdebstrap failed ({done.returncode}): {tail}")
            self._prepare_root(building)
            building.rename(self.root)
            self._prune_old_roots()
            return self.root

    def _prune_old_roots(self) -> None:
        """Remove roots of earlier package lists in which no Asterisk runs any more."""
        for old in self.settings.home.glob("root-*"):
            if old == self.root or not (old / ROOT_MARKER).exists():
                continue
            if any(_runs_asterisk_in(instance) for instance in (old / "srv/ari-app").glob("*")):
                continue
            shutil.rmtree(old, ignore_errors=True)

    def _prepare_root(self, root: Path) -> None:
        # Without the hostname in /etc/hosts Asterisk resolves it by DNS on every
        # new channel; with no network that stalls calls under load.
        hostname = socket.gethostname()
        (root / "etc/hosts").write_text(
            f"127.0.0.1 localhost {hostname}\n::1 localhost ip6-localhost ip6-loopback\n"
        )
        module_dirs = sorted(root.glob("usr/lib/*/asterisk/modules")) + sorted(
            root.glob("usr/lib/asterisk/modules")
        )
        if not module_dirs:
            raise LocalAsteriskError(f"no Asterisk module folder in {root}")
        marker = {
            "key": root_key(self.settings),
            "packages": sorted(self.settings.packages),
            "module_dir": "/" + str(module_dirs[0].relative_to(root)),
            "version": self._run_in(root, ["asterisk", "-V"]).strip(),
        }
        (root / ROOT_MARKER).write_text(json.dumps(marker, indent=2))

    def _run_in(self, root: Path, argv: list[str]) -> str:
        done = subprocess.run(
            ["chroot", str(root), *argv], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise LocalAsteriskError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def root_facts(self) -> dict[str, str]:
        """What the marker of the built root says (module folder, Asterisk version)."""
        return dict(json.loads((self.root / ROOT_MARKER).read_text()))

    # -- config -----------------------------------------------------------------

    def secrets(self) -> dict[str, str]:
        """The instance's generated passwords, made once and kept (mode 0600)."""
        path = self.instance_dir / "secrets.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
        path.parent.mkdir(parents=True, exist_ok=True)
        values = {
            "ari_password": secrets.token_urlsafe(24),
            "ami_password": secrets.token_urlsafe(24),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle)
        return values

    def template_values(self) -> dict[str, object]:
        secrets = self.secrets()
        return template_values(
            self.settings,
            ari_password=secrets["ari_password"],
            ami_password=secrets["ami_password"],
            instance_dir=self.inside_dir,
            module_dir=self.root_facts()["module_dir"],
        )

    def render(self) -> None:
        """Write the rendered configuration and dialplan into the instance tree."""
        files = render_tree(
            [self.settings.conf_dir, self.settings.dialplan_dir], self.template_values()
        )
        etc = self.instance_dir / "etc"
        # spool/recording: where ARI recordings are written; log/c*-custom: the CDR and CEL
        # backstops (Asterisk makes none of them)
        for sub in (
            "etc",
            "lib",
            "lib/keys",
            "cache",
            "spool",
            "spool/recording",
            "run",
            "log",
            "log/cdr-custom",
            "log/cel-custom",
        ):
            (self.instance_dir / sub).mkdir(parents=True, exist_ok=True)
        for stale in etc.glob("*.conf"):
            if stale.name not in files:
                stale.unlink()
        for name, text in files.items():
            (etc / name).write_text(text)
            (etc / name).chmod(0o600)
        self._write_env_file()

    def _write_env_file(self) -> None:
        values = self.template_values()
        lines = {
            "ARI_APP_ARI_URL": f"http://127.0.0.1:{self.settings.http_port}",
            "ARI_APP_ARI_USER": values["ari_user"],
            "ARI_APP_ARI_PASSWORD": values["ari_password"],
            "ARI_APP_ARI_APPLICATION": self.settings.application,
            "ARI_APP_AMI_HOST": "127.0.0.1",
            "ARI_APP_AMI_PORT": self.settings.ami_port,
            "ARI_APP_AMI_USER": values["ami_user"],
            "ARI_APP_AMI_PASSWORD": values["ami_password"],
            "ARI_APP_CDR_BACKSTOP": self.instance_dir / "log" / "cdr-custom" / "cdr.json",
            "ARI_APP_CEL_BACKSTOP": self.instance_dir / "log" / "cel-custom" / "cel.json",
            "ARI_APP_ASTERISK_CONFIG_DIR": self.instance_dir / "etc",
        }
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f"{key}={value}\n" for key, value in lines.items())

    # -- the process ------------------------------------------------------------

    def _conf_arg(self) -> list[str]:
        return ["-C", str(self.inside_dir / "etc" / "asterisk.conf")]

    def pid(self) -> int | None:
        """The pid of this instance's Asterisk when it runs, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ValueError):
            return None
        # the pid must be our Asterisk with our config, never a recycled pid
        conf = self._conf_arg()[1].encode()
        if conf in cmdline and any(arg.endswith(b"asterisk") for arg in cmdline):
            return pid
        return None

    def status(self) -> Status:
        pid = self.pid()
        return Status(
            pid is not None, pid, pid is not None and self._ari_answers(), self.instance_dir
        )

    def _ari_answers(self) -> bool:
        url = f"http://127.0.0.1:{self.settings.http_port}/ari/asterisk/info"
        try:
            reply = httpx.get(url, auth=("ari-app", self.secrets()["ari_password"]), timeout=1.0)
        except httpx.HTTPError:
            return False
        return reply.status_code == 200

    def _check_ports_free(self, wait: float = 15.0) -> None:
        """Raise when a port this instance needs stays taken for `wait` seconds (sockets of
        an Asterisk that just stopped may take a moment to go); the error says who has it."""
        deadline = time.monotonic() + wait
        while True:
            taken = self._taken_port()
            if taken is None:
                return
            if time.monotonic() >= deadline:
                port, name, reason = taken
                holders = subprocess.run(
                    ["ss", "-tuanp", f"( sport = :{port} )"],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout.strip()
                raise LocalAsteriskError(
                    f"ARI_APP_ASTERISK_{name}: port {port} on 127.0.0.1 is in use ({reason})"
                    + (f"\n{holders}" if holders else "")
                )
            time.sleep(0.2)

    def _taken_port(self) -> tuple[int, str, str] | None:
        s = self.settings
        for port, kind, name in (
            (s.http_port, socket.SOCK_STREAM, "HTTP_PORT"),
            (s.ami_port, socket.SOCK_STREAM, "AMI_PORT"),
            (s.sip_port, socket.SOCK_DGRAM, "SIP_PORT"),
        ):
            with socket.socket(socket.AF_INET, kind) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError as exc:
                    return port, name, exc.strerror or str(exc)
        return None

    def up(self, timeout: float = 60.0) -> Status:
        """Start this instance (building the root first if needed); wait until ARI answers."""
        current = self.status()
        if current.running:
            return current
        self.ensure_root()
        self.render()
        self._check_ports_free()
        self.pid_file.unlink(missing_ok=True)
        with self.console_log.open("ab") as log:
            # setsid -f: Asterisk is nobody's child here, so it outlives this command;
            # its own pid file (astrundir) says which process it is
            subprocess.run(
                ["setsid", "-f", "chroot", str(self.root), "asterisk", "-f", *self._conf_arg()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is not None and self._ari_answers():
                return self.status()
            time.sleep(0.2)
        raise LocalAsteriskError(
            f"ARI did not answer within {timeout:.0f} s; see {self.console_log}"
        )

    def down(self, timeout: float = 15.0) -> bool:
        """Stop this instance's Asterisk by its pid; True when one was running.

        Asterisk removes its pid file early in its shutdown, while its sockets are still
        open: the process itself is waited for, so a following `up` finds the ports free."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        return True

    def has_root(self) -> bool:
        return (self.root / ROOT_MARKER).exists()

    def sounds_dir(self, language: str) -> Path:
        """The root's sounds folder for a language, as the host sees it. Debian makes
        sounds/en a link to /etc/alternatives inside the root, so links are followed
        the way the chrooted Asterisk follows them."""
        path = self.root
        todo = ["usr", "share", "asterisk", "sounds", language]
        for _ in range(40):
            if not todo:
                return path
            part = todo.pop(0)
            candidate = path / part
            if candidate.is_symlink():
                target = os.readlink(candidate)
                if target.startswith("/"):
                    path, todo = self.root, [*Path(target).parts[1:], *todo]
                else:
                    todo = [*Path(target).parts, *todo]
                continue
            path = candidate.parent if part == ".." else candidate
        raise LocalAsteriskError(f"too many links under the sounds folder for '{language}'")

    def cli(self, command: str) -> str:
        """Run one Asterisk CLI command in the running instance and return its output."""
        if self.pid() is None:
            raise LocalAsteriskError(
                f"the local Asterisk '{self.settings.instance}' is not running"
            )
        return self._run_in(self.root, ["asterisk", *self._conf_arg(), "-rx", command])
