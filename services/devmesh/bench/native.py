"""The native load tools (h2load, wrk), py-spy profiles, and the bare server of R1."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.devmesh.bench.loads import Load
from services.devmesh.processes import REPO_ROOT, free_port, tcp_ready


def grpc_frame(message: bytes) -> bytes:
    """A message in gRPC's length-prefixed framing (uncompressed)."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def h2load_grpc(target: str, path: str, body: Path, calls: int, concurrency: int) -> Load | None:
    """Unary gRPC calls with h2load on one connection, `concurrency` streams; None without it."""
    h2load = shutil.which("h2load")
    if h2load is None:
        return None
    command = [h2load, "-n", str(calls), "-c", "1", "-m", str(concurrency), "-t", "1"]
    command += ["-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body)]
    command.append(f"http://{target}{path}")
    output = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", output)
    succeeded = re.search(r"(\d+) succeeded", output)
    if finished is None or succeeded is None or int(succeeded.group(1)) < calls:
        return None
    seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    return Load(calls, seconds, tool="h2load")


def wrk_get(url: str, seconds: int, concurrency: int) -> Load | None:
    """HTTP/1.1 GETs with wrk on `concurrency` connections; None without it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    command = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", url]
    output = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    if total is None or "Non-2xx" in output:
        return None
    elapsed = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    return Load(int(total.group(1)), elapsed, tool="wrk")


def py_spy() -> list[str] | None:
    """The py-spy command: on PATH, else through uvx; None without either."""
    if found := shutil.which("py-spy"):
        return [found]
    if uvx := shutil.which("uvx"):
        return [uvx, "py-spy"]
    return None


@contextmanager
def profiled(pid: int | None, output: Path | None) -> Iterator[None]:
    """Sample `pid` with py-spy while the block runs (collapsed stacks in `output`).

    py-spy attaches with ptrace: run as root or with CAP_SYS_PTRACE. Does nothing when
    `output` is None, the pid is unknown or py-spy is missing.
    """
    command = py_spy()
    if output is None or pid is None or command is None:
        yield
        return
    command += ["record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
    command += ["--nonblocking", "--output", str(output)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attaching takes a moment
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()


def hottest(collapsed: Path, top: int = 15) -> list[tuple[str, float]]:
    """The functions with the largest inclusive share of the samples of a py-spy raw file."""
    total = 0
    inclusive: dict[str, int] = {}
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        # "function (file:line)" -> "function (file)": a function counts once per stack.
        for frame in {re.sub(r":\d+\)$", ")", f) for f in stack.split(";")}:
            inclusive[frame] = inclusive.get(frame, 0) + samples
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])[:top]
    return [(frame, round(100 * samples / max(total, 1), 1)) for frame, samples in ranked]


class EchoServer:
    """The bare server of R1 in its own process, as the product service runs in its own."""

    def __init__(
        self, payload: bytes, state_dir: Path, tls: tuple[Path, Path, Path] | None = None
    ) -> None:
        """`tls`: certificate, key and CA files to serve mTLS with; None serves plaintext."""
        self.port = free_port()
        self._payload_file = state_dir / "echo-payload.bin"
        self._payload_file.write_bytes(payload)
        self._tls = tls
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        """host:port of the bare server."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> EchoServer:
        command = [sys.executable, "-m", "services.devmesh.bench_echo", str(self.port)]
        command.append(str(self._payload_file))
        command += [str(path) for path in self._tls or ()]
        self._process = subprocess.Popen(command, cwd=REPO_ROOT)
        deadline = time.monotonic() + 60
        while not tcp_ready(self.port):
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.__exit__()
                raise RuntimeError("the bare echo server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
