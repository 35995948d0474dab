"""Shared pieces of the serving benchmarks (``serve_bench.py``, ``hotswap_bench.py``).

Not a benchmark itself. It holds what both scripts need, so neither copies the other:

- **servers under test**: a registry whose champion is the pipeline of
  ``tests/served_model.py`` (plus pushed candidates), ``driftloop serve`` and any other
  command started on 127.0.0.1, waited for (``/healthz`` answers, then the process tree
  goes idle so start-up work is not measured) and stopped (SIGTERM, then SIGKILL of the
  process group it was started in);
- **wrk** (Debian package ``wrk``, one thread) driven by a generated Lua script that POSTs
  a fresh ``/predict`` body from a pool on every request, with a unique ``request_id``
  that the server echoes, times every response itself and counts only a window that
  opens after the warm-up *and* once every connection has had a response, on the same
  connections (wrk's own histogram would include both);
- **a Python load generator**: asyncio + httpx in separate *spawned* processes (never in
  the benchmark's own process), closed loop, one record per response
  ``(start, end, status, model_version, error)`` on the system-wide monotonic clock, so the
  parent can relate responses to its own events (``time.monotonic`` is CLOCK_MONOTONIC on
  Linux: one clock for every process of the machine);
- **accounting**: CPU seconds of a process tree from ``/proc`` (who used the cores),
  nearest-rank percentiles, and :class:`Summary`, one row of a results table.

Every loop is bounded both in count and in time.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests/ is a namespace package at the repository root
    sys.path.insert(0, str(ROOT))

from tests.e2e.processes import free_port  # noqa: E402
from tests.served_model import (  # noqa: E402
    cancer_frame,
    example_rows,
    push,
    served_settings_in,
)

from driftloop.config import Settings  # noqa: E402
from driftloop.registry import ModelRegistry  # noqa: E402

HOST = "127.0.0.1"
#: One response: (start, end) on time.monotonic(), HTTP status (0: no response),
#: model_version (-1: not read), error ("" when 2xx).
Record = tuple[float, float, int, int, str]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class Summary:
    """One target under one load: a row of the results table."""

    target: str
    generator: str
    seconds: float
    requests: int  # 2xx responses
    errors: int  # non-2xx responses, connection errors, timeouts
    rps: float  # 2xx responses per second
    p50_ms: float
    p99_ms: float
    server_cores: float  # CPU seconds of the server's process tree / wall seconds
    loadgen_cores: float  # the same for the load generator
    ramp_s: float = float("nan")  # until every connection had a response (wrk only)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize_records(records: Sequence[Record], start: float, end: float, *, target: str,
                      generator: str, server_cores: float, loadgen_cores: float) -> Summary:
    """The responses that *completed* in ``[start, end)`` (monotonic seconds)."""
    kept = [r for r in records if start <= r[1] < end]
    ok = [r for r in kept if 200 <= r[2] < 300]
    latencies = [(r[1] - r[0]) * 1000 for r in ok]
    seconds = end - start
    return Summary(target, generator, seconds, len(ok), len(kept) - len(ok),
                   len(ok) / seconds, percentile(latencies, 50), percentile(latencies, 99),
                   server_cores, loadgen_cores)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (0 once gone)."""
    total, pending, seen = 0.0, [pid], 0
    while pending and seen < 1000:
        current, seen = pending.pop(), seen + 1
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, IndexError, ValueError):
            continue
    return total


# --------------------------------------------------------------------------- the model
def registry_with_candidates(root: Path, c_values: Sequence[float], database_url: str = ""
                             ) -> tuple[Settings, list[int]]:
    """A fresh registry under ``root`` (SQLite, or ``database_url``) whose champion v1 is
    the served-model pipeline, plus one candidate per regularisation strength in
    ``c_values`` (all trained on the champion's snapshot); returns the settings and the
    candidates' versions."""
    settings = served_settings_in(root, database_url)
    registry = ModelRegistry.open(settings.database_url, artifacts=settings.data_dir)
    champion = registry.get_champion(settings.model_name)
    assert champion is not None
    frame = cancer_frame()
    versions = [push(registry, frame, champion.dataset_id or "", champion.dataset_sha256 or "",
                     c=c) for c in c_values]
    registry.engine.dispose()
    return settings, versions


def predict_bodies(n: int, seed: int) -> list[bytes]:
    """``n`` ``POST /predict`` bodies of ``example_rows`` (fixed ``seed``), encoded once."""
    return [json.dumps({"features": row}).encode() for row in example_rows(n, seed=seed)]


# --------------------------------------------------------------------------- servers
@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without any DRIFTLOOP_* setting (the server's defaults apply)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DRIFTLOOP_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    return {**env, **(extra or {})}


def says_ok(response: httpx.Response) -> bool:
    """driftloop's (and the bench's own apps') ``/healthz``: ``{"status": "ok"}``."""
    return bool(response.json().get("status") == "ok")


@contextmanager
def running(cmd: Sequence[str], port: int, log: Path, *, env: dict[str, str], cwd: Path,
            startup_s: float = 120.0, health: str = "/healthz",
            healthy: Callable[[httpx.Response], bool] = says_ok) -> Iterator[Server]:
    """Start ``cmd`` (which listens on ``port``), wait until ``GET health`` is ``healthy``
    and the process tree idle, stop it."""
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://{HOST}:{port}", proc, log)
    try:
        wait_healthy(server, startup_s, health, healthy)
        wait_idle(server.pid, timeout_s=startup_s)
        yield server
    finally:
        stop(proc)


def wait_healthy(server: Server, timeout_s: float, health: str = "/healthz",
                 healthy: Callable[[httpx.Response], bool] = says_ok) -> None:
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / 0.2) + 1):
        if server.process.poll() is not None or time.monotonic() > deadline:
            break
        try:
            if healthy(httpx.get(f"{server.url}{health}", timeout=2)):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{server.url} did not start:\n{server.log.read_text()[-3000:]}")


def wait_idle(pid: int, *, below_cores: float = 0.15, window_s: float = 1.0,
              timeout_s: float = 60.0) -> None:
    """Until the process tree uses fewer than ``below_cores`` over ``window_s`` (several
    workers finish their start-up after the first one answers /healthz)."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / window_s) + 1):
        if time.monotonic() > deadline:
            break
        before = tree_cpu_seconds(pid)
        time.sleep(window_s)
        if (tree_cpu_seconds(pid) - before) / window_s < below_cores:
            return
    print(f"warning: process {pid} still busy after {timeout_s:.0f} s; measuring anyway",
          file=sys.stderr)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the workers too
    except ProcessLookupError:
        return
    proc.wait(timeout=10)


def setting_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``["max_wait_ms=10"]`` -> ``{"DRIFTLOOP_MAX_WAIT_MS": "10"}`` (for ``--set``)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set wants KEY=VALUE, got {pair!r}")
        out[f"DRIFTLOOP_{key.strip().upper().removeprefix('DRIFTLOOP_')}"] = value
    return out


@contextmanager
def driftloop_server(settings: Settings, workers: int, log_dir: Path,
                     overrides: dict[str, str] | None = None,
                     startup_s: float = 120.0) -> Iterator[Server]:
    """``driftloop serve`` on ``settings``' registry with the admin token, every other
    setting at its default (the environment's DRIFTLOOP_* variables are dropped) unless
    ``overrides`` (DRIFTLOOP_* variables) says otherwise."""
    port = free_port()
    exe = Path(sys.executable).with_name("driftloop")
    cmd = [str(exe), "serve", "--host", HOST, "--port", str(port), "--data-dir",
           str(settings.data_dir), "--database-url", settings.database_url, "--model",
           settings.model_name, "--workers", str(workers), "--log-level", "warning",
           "--admin-token", settings.admin_token or ""]
    with running(cmd, port, log_dir / f"driftloop-{port}.log", env=clean_env(overrides),
                 cwd=log_dir, startup_s=startup_s) as server:
        yield server


@contextmanager
def uvicorn_app(factory: str, app_dir: Path, log_dir: Path, env: dict[str, str],
                http: str = "auto") -> Iterator[Server]:
    """``uvicorn --factory MODULE:FUNCTION`` (one worker) from ``app_dir`` on a free port;
    ``http``: uvicorn's ``--http`` (its name for a protocol, or a class's import path)."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", factory, "--factory", "--app-dir", str(app_dir),
           "--host", HOST, "--port", str(port), "--workers", "1", "--log-level", "warning",
           "--http", http]
    with running(cmd, port, log_dir / f"uvicorn-{port}.log", env=env, cwd=log_dir) as server:
        yield server


# --------------------------------------------------------------------------- wrk
@dataclass(frozen=True)
class WrkRun:
    """The measured window of one wrk run (the warm-up before it is discarded)."""

    seconds: float
    ramp_s: float  # launch until every connection had its first response (NaN: never)
    ok: int  # 2xx responses completed in the window
    errors: int  # non-2xx in the window, plus wrk's socket errors over the whole run
    socket_errors: dict[str, int]  # connect, read, write, timeout (whole run)
    latencies_ms: list[float]  # of the 2xx responses in the window
    cpu_seconds: float  # wrk's own, whole run
    wall_s: float  # the whole run
    all_ok: int  # 2xx responses of the whole run, warm-up included


#: The longest wait, after the warm-up, for every connection's first response.
MAX_RAMP_S = 30

# Every request carries a unique request_id (both servers echo it), so that response()
# can time it: wrk's own histogram cannot leave out a warm-up. The window opens once the
# warm-up is over *and* every connection has had a response (a saturated server may take
# seconds to accept its last connection: that ramp is not steady state), and lasts the
# given seconds; then the script says WRK_CLOSED and the caller interrupts wrk (SIGINT:
# wrk stops and runs done()). One wrk thread, so "the first N requests" are the first
# request of each of the N connections.
WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()  -- CLOCK_MONOTONIC, the clock of Python's time.monotonic()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local headers = {["Content-Type"] = "application/json"}
local threads = {}
local started, first = {}, {}
local counter, sent, conns, pending, closed = 0, 0, 0, 0, false
local warm_until, seconds, give_up, tag = 0, 0, 0, ""
window_from, window_to, ramp_done, latencies, ok, bad, all_ok = -1, -1, -1, {}, 0, 0, 0

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  local launch = tonumber(args[1])
  warm_until = launch + tonumber(args[2])
  seconds = tonumber(args[3])
  give_up = warm_until + tonumber(args[4])
  conns = tonumber(args[5])
  pending = conns
  tag = args[6]
  counter = offset
end

function request()
  counter = counter + 1
  sent = sent + 1
  local id = tag .. "-" .. counter
  started[id] = now()
  -- wrk calls request() once more, unsent, to check the script: conns + 1 candidates
  if sent <= conns + 1 then first[id] = true end
  local body = bodies[(counter % #bodies) + 1]
  return wrk.format("POST", nil, headers,
                    prefix .. '{"request_id":"' .. id .. '",' .. string.sub(body, 2) .. suffix)
end

local function open_window(t)
  if window_from < 0 and t >= warm_until and (pending <= 0 or t >= give_up) then
    window_from, window_to = t, t + seconds
  end
end

function response(status, headers, body)
  local t = now()
  local id = string.match(body, '"request_id":%s*"([^"]+)"')
  local start = id and started[id]
  if start then started[id] = nil end
  if start and status >= 200 and status < 300 then all_ok = all_ok + 1 end
  if id and first[id] then
    first[id] = nil
    pending = pending - 1
    if pending == 0 then ramp_done = t end
  end
  if window_from < 0 then
    open_window(t)
    return
  end
  if t >= window_to then
    if not closed then
      closed = true
      io.write("WRK_CLOSED\n")
      io.stdout:flush()
    end
    return
  end
  if status >= 200 and status < 300 and start then
    ok = ok + 1
    latencies[#latencies + 1] = (t - start) * 1000
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
                         e.connect, e.read, e.write, e.timeout))
  for _, thread in ipairs(threads) do
    local lat = thread:get("latencies")
    local parts = {}
    for i = 1, #lat do parts[i] = string.format("%.3f", lat[i]) end
    io.write("WRK_LAT " .. table.concat(parts, " ") .. "\n")
    io.write(string.format("WRK_WINDOW %.6f %.6f %.6f %d %d %d\n", thread:get("window_from"),
                           thread:get("window_to"), thread:get("ramp_done"), thread:get("ok"),
                           thread:get("bad"), thread:get("all_ok")))
  end
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version(exe: str) -> str:
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10,
                         check=False)
    return (out.stdout or out.stderr).split("[", 1)[0].strip()


def write_wrk_script(bodies: Sequence[bytes], path: Path, wrap: tuple[str, str] = ("", "")
                     ) -> Path:
    """The Lua script: ``bodies`` in turn, every response timed, only the window counted;
    each body is sent between ``wrap``'s two strings (a server that wants another shape)."""
    quoted = []
    for body in bodies:
        text = body.decode()
        if "]==]" in text or not text.startswith("{"):
            raise ValueError("a body must be a JSON object without the Lua terminator ]==]")
        quoted.append(f"[==[{text}]==]")
    prefix, suffix = (f"[==[{text}]==]" for text in wrap)
    lua = ("local bodies = {\n" + ",\n".join(quoted) + f"\n}}\nlocal prefix = {prefix}\n"
           f"local suffix = {suffix}\n" + WRK_SCRIPT)
    path.write_text("-- generated by benchmarks/loadgen.py\n" + lua)
    return path


def run_wrk(exe: str, url: str, script: Path, *, concurrency: int, warmup: int, seconds: int,
            tag: str) -> WrkRun:
    """One closed-loop wrk run (one thread): warm-up, ramp, then a window of ``seconds``.
    ``tag`` makes this run's request ids unique."""
    limit = warmup + MAX_RAMP_S + seconds + 1
    launch = time.monotonic()
    cmd = [exe, "-t", "1", "-c", str(concurrency), "-d", f"{limit}s", "--timeout", "10s",
           "-s", str(script), url, "--", repr(launch), str(warmup), str(seconds),
           str(MAX_RAMP_S), str(concurrency), tag]
    before = os.times()
    lines = _run_until_closed(cmd, limit + 30)
    after = os.times()
    wall = time.monotonic() - launch
    summary = [ln for ln in lines if ln.startswith("WRK_JSON ")]
    windows = [ln.split()[1:] for ln in lines if ln.startswith("WRK_WINDOW ")]
    if not summary or not windows or "WRK_CLOSED" not in lines:
        raise RuntimeError("wrk gave no summary, or its window never closed:\n"
                           + "\n".join(ln[:300] for ln in lines[-20:]))
    sockets = {k: int(v) for k, v in json.loads(summary[-1].removeprefix("WRK_JSON ")).items()}
    latencies = [float(v) for ln in lines if ln.startswith("WRK_LAT") for v in ln.split()[1:]]
    window_from, window_to, ramp_done, ok, bad, all_ok = windows[0]
    ramp = float(ramp_done) - launch if float(ramp_done) > 0 else float("nan")
    cpu = (after.children_user - before.children_user
           + after.children_system - before.children_system)
    return WrkRun(float(window_to) - float(window_from), ramp, int(ok),
                  int(bad) + sum(sockets.values()), sockets, latencies, cpu, wall, int(all_ok))


def _run_until_closed(cmd: Sequence[str], timeout_s: float) -> list[str]:
    """Run wrk, interrupt it once the script says WRK_CLOSED; its output lines."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    closed = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends when wrk exits
            lines.append(line.rstrip("\n"))
            if line.startswith("WRK_CLOSED"):
                closed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    closed.wait(timeout_s)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # wrk stops, prints and runs done()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    reader.join(timeout=30)
    return lines


# --------------------------------------------------------------------------- Python load
@dataclass(frozen=True)
class WorkerSpec:
    """What one load-generator process does."""

    url: str
    bodies: tuple[bytes, ...]
    users: int  # concurrent closed-loop clients in this process
    first_user: int  # global index of its first client (offsets into the bodies)
    seconds: float  # clients start no new request after start + seconds
    read_version: bool  # parse model_version out of every 2xx response
    timeout_s: float = 10.0
    max_requests_per_user: int = 1_000_000


@dataclass(frozen=True)
class LoadRun:
    start: float  # monotonic instant every process started sending
    stop: float  # start + seconds
    records: list[Record]
    cpu_seconds: float  # the generator processes' own
    late_processes: int  # processes that started after ``start`` (should be 0)


def _worker_entry(spec: WorkerSpec, ready: Any, go: Any, start_at: Synchronized[float],
                  results: Any) -> None:
    ready.put(os.getpid())
    if not go.wait(120):
        results.put(([], 0.0, False))
        return
    late = time.monotonic() > start_at.value
    cpu = time.process_time()  # not the imports: only the sending
    records = asyncio.run(_drive(spec, start_at.value))
    results.put((records, time.process_time() - cpu, late))


async def _drive(spec: WorkerSpec, start_at: float) -> list[Record]:
    limits = httpx.Limits(max_connections=spec.users, max_keepalive_connections=spec.users)
    async with httpx.AsyncClient(base_url=spec.url, limits=limits, timeout=spec.timeout_s,
                                 headers={"content-type": "application/json"}) as client:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        stop_at = start_at + spec.seconds
        per_user = await asyncio.gather(*(_user(client, spec, spec.first_user + u, stop_at)
                                          for u in range(spec.users)))
    return [record for records in per_user for record in records]


async def _user(client: httpx.AsyncClient, spec: WorkerSpec, user: int,
                stop_at: float) -> list[Record]:
    records: list[Record] = []
    offset = user * 7919
    for k in range(spec.max_requests_per_user):
        start = time.monotonic()
        if start >= stop_at:
            break
        body = spec.bodies[(offset + k) % len(spec.bodies)]
        status, version, error = await _post(client, body, spec.read_version)
        records.append((start, time.monotonic(), status, version, error))
    return records


async def _post(client: httpx.AsyncClient, body: bytes, read_version: bool
                ) -> tuple[int, int, str]:
    try:
        response = await client.post("/predict", content=body)
    except httpx.HTTPError as exc:
        return 0, -1, type(exc).__name__
    if not response.is_success:
        return response.status_code, -1, f"HTTP {response.status_code}"
    version = -1
    if read_version:
        try:
            version = int(response.json()["model_version"])
        except (ValueError, KeyError, TypeError):
            return response.status_code, -1, "no model_version in the response"
    return response.status_code, version, ""


class PythonLoad:
    """Closed-loop clients in ``processes`` spawned processes: :meth:`start` releases them
    all at one instant, :meth:`collect` gathers every response record."""

    def __init__(self, url: str, bodies: Sequence[bytes], *, concurrency: int, seconds: float,
                 processes: int, read_version: bool) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.seconds = seconds
        self._ready, self._results = ctx.Queue(), ctx.Queue()
        self._go = ctx.Event()
        self._start_at: Synchronized[float] = ctx.Value("d", 0.0)
        self._procs: list[SpawnProcess] = []
        shares = [concurrency // processes + (i < concurrency % processes)
                  for i in range(processes)]
        for i, users in enumerate(shares):
            spec = WorkerSpec(url, tuple(bodies), users, sum(shares[:i]), seconds,
                              read_version)
            self._procs.append(ctx.Process(target=_worker_entry, daemon=True, args=(
                spec, self._ready, self._go, self._start_at, self._results)))
        self.start_at = 0.0

    def start(self, timeout_s: float = 120.0, lead_s: float = 0.5) -> float:
        """Start the processes, wait until all are ready, release them ``lead_s`` from now;
        returns that instant (monotonic)."""
        for proc in self._procs:
            proc.start()
        self._receive(self._ready, timeout_s)
        self.start_at = time.monotonic() + lead_s
        self._start_at.value = self.start_at
        self._go.set()
        return self.start_at

    def collect(self, timeout_s: float) -> LoadRun:
        # Read before joining: a child blocks on exit until its big message is read.
        messages = self._receive(self._results, timeout_s)
        records: list[Record] = [record for part, _, _ in messages for record in part]
        cpu = sum(seconds for _, seconds, _ in messages)
        late = sum(int(was_late) for _, _, was_late in messages)
        self.close()
        return LoadRun(self.start_at, self.start_at + self.seconds, records, cpu, late)

    def _receive(self, channel: Any, timeout_s: float) -> list[Any]:
        """One message from every process; fails fast when one of them died."""
        messages: list[Any] = []
        deadline = time.monotonic() + timeout_s
        for _ in range(int(timeout_s / 0.5) + len(self._procs) + 1):
            if len(messages) == len(self._procs) or time.monotonic() > deadline:
                break
            try:
                messages.append(channel.get(timeout=0.5))
            except queue.Empty:
                dead = [p.exitcode for p in self._procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a load-generator process failed (exit {dead[0]})"
                                       ) from None
        if len(messages) < len(self._procs):
            raise RuntimeError(f"load-generator processes silent for {timeout_s:.0f} s")
        return messages

    def close(self, grace_s: float = 10.0) -> None:
        for proc in self._procs:
            if proc.pid is None:  # never started
                continue
            proc.join(timeout=grace_s)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)


@contextmanager
def python_load(url: str, bodies: Sequence[bytes], *, concurrency: int, seconds: float,
                processes: int, read_version: bool) -> Iterator[PythonLoad]:
    load = PythonLoad(url, bodies, concurrency=concurrency, seconds=seconds,
                      processes=processes, read_version=read_version)
    try:
        yield load
    except BaseException:
        load.close(grace_s=0.0)
        raise
    load.close()
