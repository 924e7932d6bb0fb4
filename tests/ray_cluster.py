"""A throwaway multi-node Ray cluster on this machine, all on loopback, for the executor tests.

`LocalRayCluster` runs `ray start --head` and N `ray start --address=...` worker processes the
way a user would on several hosts (README, "Sweeps on a cluster"), each node with one CPU, no
dashboard and a small object store, in a private temp dir. Nodes see the repository through
PYTHONPATH.

Everything stays on 127.0.0.1. Ray swaps a loopback address for the host's outward one
(`services.resolve_ip_for_localhost`) unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which every
node process and the test's driver get (`LOOPBACK_ENV`, set before `ray` is imported); that
switch also makes the `ray start` CLI refuse to join a cluster, so the nodes run the same CLI
entry point with the refusal and the swap turned off in that one process (`_RAY_START`). `stop()` kills exactly the processes of this cluster — those started here and the
Ray processes whose command line names its temp dir — never a `ray stop`, which would end every
Ray cluster on the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
#: the cluster's own token (token auth on every node and the driver), so that a token a user
#: generated for another cluster (~/.ray/auth_token) is never read and cannot lock this one out
CLUSTER_TOKEN = secrets.token_hex(32)
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": CLUSTER_TOKEN}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def node_env() -> dict[str, str]:
    env = {**os.environ, **LOOPBACK_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


class LocalRayCluster:
    """Head + `workers` worker nodes started with the `ray` CLI on 127.0.0.1."""

    def __init__(self, workers: int = 2, cpus_per_node: int = 1, head_cpus: int = 1,
                 object_store_bytes: int = 100_000_000):
        self.workers, self.cpus, self.head_cpus = workers, cpus_per_node, head_cpus
        self.object_store_bytes = object_store_bytes
        self.root = tempfile.mkdtemp(prefix="cbray", dir="/tmp")  # short: Ray's socket paths are long
        self.port = free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        self.nodes: list[subprocess.Popen] = []

    def _start_node(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(os.path.join(self.root, f"{name}.log"), "w")
        proc = subprocess.Popen(
            [sys.executable, "-c", _RAY_START, "start", *args, "--block",
             f"--node-ip-address={LOOPBACK}",
             f"--object-store-memory={self.object_store_bytes}", "--disable-usage-stats",
             f"--dashboard-agent-listen-port={free_port()}"],
            env=node_env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(proc)
        return proc

    def start(self, timeout_s: float = 180.0, tries: int = 3) -> LocalRayCluster:
        """Start the head, then the workers one at a time (a loaded machine times out a raylet
        registering beside others: Ray gives it 30 s), each tried up to `tries` times."""
        try:
            self._start_node("head", ["--head", f"--port={self.port}", "--include-dashboard=false",
                                      f"--num-cpus={self.head_cpus}", f"--temp-dir={self.root}"])
            self.wait_for_nodes(1, timeout_s)
            for i in range(self.workers):
                for attempt in range(tries):
                    proc = self.add_worker(f"worker{i}")
                    try:
                        self.wait_for_nodes(2 + i, timeout_s)
                        break
                    except RuntimeError:
                        if proc.poll() is None or attempt == tries - 1:
                            raise
                        self.nodes.remove(proc)
        except BaseException:
            self.stop()
            raise
        return self

    def add_worker(self, name: str) -> subprocess.Popen:
        return self._start_node(name, [f"--address={self.address}", f"--num-cpus={self.cpus}"])

    def wait_for_nodes(self, n: int, timeout_s: float) -> list[dict]:
        """Wait (in a short-lived driver process) until `n` nodes are alive; their ids and IPs."""
        proc = subprocess.Popen([sys.executable, "-c", _WAIT_FOR_NODES, self.address, str(n),
                                 str(timeout_s)], env=node_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout_s + 60
        while proc.poll() is None:
            lost = [p.args[4] for p in self.nodes if p.poll() is not None]
            if lost or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"Ray nodes exited ({lost}) or timed out: {self.logs()}")
            time.sleep(0.5)
        out = proc.stdout.read()
        if proc.returncode != 0:
            raise RuntimeError(f"{n} Ray nodes not alive: {out[-1500:]} | {self.logs()}")
        nodes = json.loads(out.strip().splitlines()[-1])
        bad = [x["ip"] for x in nodes if x["ip"] != LOOPBACK]
        if bad:
            raise RuntimeError(f"Ray nodes on non-loopback addresses {bad}")
        return nodes

    def logs(self) -> str:
        tails = []
        for p in sorted(Path(self.root).glob("*.log")):
            tails.append(f"{p.name}: {p.read_text(errors='replace')[-800:]}")
        return " | ".join(tails)

    def kill_node(self, proc: subprocess.Popen) -> None:
        """Kill one node the hard way (a lost machine): its `ray start`, raylet and workers."""
        for pid in self.pids(proc):
            _kill(pid)

    def pids(self, proc: subprocess.Popen) -> list[int]:
        """The processes of one node: its process group, plus Ray workers (own process groups)
        whose parent is in that group."""
        group = [p for p in _processes() if _pgid(p) == proc.pid]
        children = [p for p in _processes() if _ppid(p) in group and p not in group]
        return group + children

    def stop(self) -> None:
        for proc in self.nodes:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in _processes():
            if self.root in _cmdline(pid):
                _kill(pid)
        for proc in self.nodes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


_RAY_START = """
import sys
import ray._private.ray_constants as constants
import ray._private.services as services
constants.ENABLE_RAY_CLUSTER = True
services.resolve_ip_for_localhost = lambda host: host
from ray.scripts.scripts import main
sys.argv[0] = "ray"
main()
"""

_WAIT_FOR_NODES = """
import json, sys, time
import ray
address, n, timeout_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout_s
while True:
    try:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        break
    except ConnectionError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.5)
while True:
    alive = [x for x in ray.nodes() if x["Alive"]]
    if len(alive) >= n or time.monotonic() > deadline:
        break
    time.sleep(0.5)
print(json.dumps([{"id": x["NodeID"], "ip": x["NodeManagerAddress"]} for x in alive]))
sys.exit(0 if len(alive) >= n else 1)
"""


def _processes() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _ppid(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[1]) if fields else -1


def _pgid(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[2]) if fields else -1


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
