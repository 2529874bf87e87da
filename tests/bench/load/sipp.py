"""SIPp on both ends of the load benchmark: the callers (one SIPp per run at a fixed rate)
and the agents' phones (one SIPp answering for every agent: each phone's contact points at it).

Both scenarios log each step with the wall-clock time (`gettimeofday`), so a caller's
digit and the agent's INVITE, logged by two processes, can be set against each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.integration.telephony import CARRIER_ADDRESS, REPO, SPEECH_PCAP, free_port, key_pcap

SCENARIOS = REPO / "tests" / "sipp"
AFTER_KEY_SECONDS = 0.3  # the caller starts talking this long after pressing the key


def read_steps(path: Path) -> dict[str, dict[str, float]]:
    """A benchmark scenario's log: step -> calling number -> wall-clock time."""
    steps: dict[str, dict[str, float]] = defaultdict(dict)
    if not path.exists():
        return steps
    for line in path.read_text(errors="replace").splitlines():
        # SIPp writes nothing for a moment's microseconds when it has none
        parts = [*line.split(), "0"]
        if len(parts) < 4 or parts[0] not in ("invite", "answered", "digit", "bye", "done"):
            continue
        try:
            at = float(parts[2]) + float(parts[3]) / 1e6
        except ValueError:
            continue
        steps[parts[0]].setdefault(parts[1], at)  # a retransmission keeps the first time
    return steps


def sipp_version() -> str:
    run = subprocess.run(["sipp", "-v"], capture_output=True, text=True, check=False)
    for line in (run.stdout + run.stderr).splitlines():
        if "SIPp v" in line:
            return line.strip().split()[1].rstrip(",").removeprefix("v")
    return "unknown"


class AgentPhones:
    """One SIPp answering for every agent: each phone's contact points at it."""

    def __init__(self, folder: Path, sip_port: int) -> None:
        self.folder = folder
        self.sip_port = sip_port
        self.port = free_port(socket.SOCK_DGRAM)
        self.log = folder / "agents.log"
        self.errors = folder / "agents-errors.log"
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> AgentPhones:
        scenario = self.folder / "bench_agent.xml"
        scenario.write_text(
            (SCENARIOS / "bench_agent.xml").read_text().replace("{speech_pcap}", str(SPEECH_PCAP))
        )
        for _ in range(3):  # a port taken between choosing it and SIPp binding it: again
            self.port = free_port(socket.SOCK_DGRAM)
            self._process = await asyncio.create_subprocess_exec(
                "sipp",
                "-sf",
                str(scenario),
                "-i",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-mp",
                str(free_port(socket.SOCK_DGRAM)),
                "-aa",  # the qualify OPTIONS get their 200
                "-trace_logs",
                "-log_file",
                str(self.log),
                "-trace_err",
                "-error_file",
                str(self.errors),
                "-nostdin",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                cwd=self.folder,
            )
            if await answers_options(self.port):
                return self
            await self.__aexit__()
        raise RuntimeError(f"the agents' SIPp does not answer OPTIONS: {self.error_tail()}")

    def error_tail(self) -> str:
        return self.errors.read_text(errors="replace")[-1000:] if self.errors.exists() else ""

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def __aexit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()

    def contact(self, user: str) -> str:
        """Where a phone's calls reach this SIPp."""
        return f"sip:{user}@127.0.0.1:{self.port}"

    def steps(self) -> dict[str, dict[str, float]]:
        """`invite` and `answered` (the ACK): calling number -> when (the first one)."""
        return read_steps(self.log)

    def error_lines(self) -> int:
        if not self.errors.exists():
            return 0
        return sum(1 for line in self.errors.read_text(errors="replace").splitlines() if line)


class _Probe(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answered = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"SIP/2.0 200"):
            self.answered.set()


async def answers_options(port: int, tries: int = 10) -> bool:
    """Whether a SIP agent on 127.0.0.1:port answers an OPTIONS (SIPp -aa does)."""
    loop = asyncio.get_running_loop()
    transport, probe = await loop.create_datagram_endpoint(_Probe, local_addr=("127.0.0.1", 0))
    local = transport.get_extra_info("sockname")[1]
    try:
        for attempt in range(tries):
            request = (
                f"OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-probe-{attempt}\r\n"
                f"From: <sip:bench@127.0.0.1:{local}>;tag=probe\r\n"
                f"To: <sip:probe@127.0.0.1:{port}>\r\n"
                f"Call-ID: probe-{attempt}-{local}@127.0.0.1\r\n"
                "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            )
            transport.sendto(request.encode(), ("127.0.0.1", port))
            try:
                await asyncio.wait_for(probe.answered.wait(), 0.5)
                return True
            except TimeoutError:
                continue
        return False
    finally:
        transport.close()


@dataclass(frozen=True)
class CallerRun:
    """What one SIPp caller run did: its exit code, its steps and its error trace."""

    returncode: int
    steps: dict[str, dict[str, float]]
    errors: str

    @property
    def numbers(self) -> list[str]:
        return sorted(self.steps["invite"])

    def completed(self) -> set[str]:
        return set(self.steps["done"])


def caller_scenario(folder: Path, press_after: float, talk: float) -> Path:
    """The caller's scenario with its key, its speech and its pauses filled in."""
    folder.mkdir(parents=True, exist_ok=True)
    pcap = key_pcap(folder / "key-1.pcap", "1", 0)
    text = (SCENARIOS / "bench_caller.xml").read_text()
    for key, value in {
        "{dtmf_pcap}": str(pcap),
        "{speech_pcap}": str(SPEECH_PCAP),
        "{press_ms}": str(int(press_after * 1000)),
        "{hangup_ms}": str(int(talk * 1000)),
    }.items():
        text = text.replace(key, value)
    scenario = folder / "bench_caller.xml"
    scenario.write_text(text)
    return scenario


async def run_callers(
    folder: Path,
    sip_port: int,
    number: str,
    *,
    rate: float,
    calls: int,
    prefix: str,
    press_after: float,
    talk: float,
) -> CallerRun:
    """`calls` calls to `number` at `rate` per second from the carrier's address."""
    scenario = caller_scenario(folder, press_after, talk)
    log, errors = folder / "callers.log", folder / "callers-errors.log"
    seconds = calls / rate + press_after + talk + 60
    process = await asyncio.create_subprocess_exec(
        "sipp",
        f"127.0.0.1:{sip_port}",
        "-sf",
        str(scenario),
        "-i",
        CARRIER_ADDRESS,
        "-p",
        str(free_port(socket.SOCK_DGRAM, CARRIER_ADDRESS)),
        "-mp",
        str(free_port(socket.SOCK_DGRAM, CARRIER_ADDRESS)),
        "-s",
        number,
        "-key",
        "prefix",
        prefix,
        "-r",
        f"{rate:g}",
        "-rp",
        "1000",
        "-m",
        str(calls),
        "-l",
        "100000",
        "-recv_timeout",
        "30s",
        "-timeout",
        f"{int(seconds)}s",
        "-timeout_error",
        "-trace_logs",
        "-log_file",
        str(log),
        "-trace_err",
        "-error_file",
        str(errors),
        "-nostdin",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=folder,
    )
    try:
        await asyncio.wait_for(process.wait(), seconds + 30)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
    trace = errors.read_text(errors="replace") if errors.exists() else ""
    return CallerRun(process.returncode or 0, read_steps(log), trace)


@contextlib.asynccontextmanager
async def agent_phones(folder: Path, sip_port: int) -> AsyncIterator[AgentPhones]:
    async with AgentPhones(folder, sip_port) as phones:
        yield phones
