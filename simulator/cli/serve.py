"""``shop-r1 serve``: a vLLM OpenAI-compatible server for a local model folder, until Ctrl-C.

The point of a separate command: start the slow server (about a minute on CPU) once, then point
many ``shop-r1 simulate --policy vllm --base-url ...`` runs, notebooks or training evals at it.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path

import click
from rich.console import Console

from shop_r1.simulator.agent.llm.models import resolve_model
from shop_r1.simulator.agent.llm.vllm_server import VLLMError, VLLMServer

logger = logging.getLogger(__name__)


def resolve_model_dir(spec: str) -> Path:
    """A local model folder for ``spec``: ``default`` (the embedded model) or a folder path.

    :func:`shop_r1.simulator.agent.llm.models.resolve_model` owns the rules (default model conversion,
    hub ids refused offline); its errors become a usage error on ``--model``.
    """
    try:
        return Path(resolve_model(spec, show_status=True))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--model") from exc


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command("serve")
@click.option("--model", "model", default="default", show_default=True,
              help="Local Hugging Face model folder, or 'default' for the embedded SmolLM2-135M-Instruct.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port on 127.0.0.1 (0: a free one).")
@click.option("--max-model-len", type=click.IntRange(16), default=4096, show_default=True, help="Context length (prompt + answer) in tokens.")
@click.option("--served-model-name", default=None, help="Model name clients send (default: the folder's name).")
@click.option("--dtype", default="float32", show_default=True, help="Weights dtype (float32 on CPU).")
@click.option("--kv-cache-gib", type=click.FloatRange(min=0.1), default=1.0, show_default=True, help="KV cache size (VLLM_CPU_KVCACHE_SPACE).")
@click.option("--dev-mode/--no-dev-mode", default=False, show_default=True,
              help="VLLM_SERVER_DEV_MODE=1: allow weight reload via /collective_rpc (admin endpoints; local use only).")
@click.option("--vllm-python", type=click.Path(dir_okay=False), default=None,
              help="Python of the vLLM virtualenv (default: $SHOP_R1_VLLM_PYTHON or .venv-vllm/bin/python).")
@click.option("--log-file", type=click.Path(dir_okay=False), default=None, help="Server log (default: a temp file).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=600, show_default=True, help="Seconds to wait for readiness.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until the server answers before reporting it ready (--no-wait: print the URL at once).")
@click.argument("extra_args", nargs=-1, type=click.UNPROCESSED)
def serve(model: str, port: int, max_model_len: int, served_model_name: str | None, dtype: str, kv_cache_gib: float,
          dev_mode: bool, vllm_python: str | None, log_file: str | None, timeout_s: float, wait: bool,
          extra_args: tuple[str, ...]) -> None:
    """Start a vLLM OpenAI-compatible server for MODEL and keep it serving until Ctrl-C.

    Arguments after `--` go to vLLM unchanged, e.g. `shop-r1 serve --model DIR -- --seed 1`.
    """
    console = Console(stderr=True)
    model_dir = resolve_model_dir(model)
    try:
        server = VLLMServer(
            model_dir, served_model_name=served_model_name, port=port or None, max_model_len=max_model_len,
            dtype=dtype, kv_cache_gib=kv_cache_gib, extra_args=extra_args, dev_mode=dev_mode,
            vllm_python=vllm_python, log_path=log_file, ready_timeout_s=timeout_s,
        )
        server.launch()
    except (VLLMError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc

    # SIGTERM (e.g. from a supervisor) ends the server as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        console.print(f"[bold]vLLM[/] model [cyan]{model_dir}[/] as [cyan]{server.served_model_name}[/]"
                      f" (pid {server.pid}, log {server.log_path})")
        if wait:
            with console.status("starting vLLM (about a minute on CPU)..."):
                ready_s = server.wait_ready()
            console.print(f"[green]ready[/] in {ready_s:.1f} s")
        # The URL goes to stdout on its own line so scripts can capture it.
        click.echo(server.base_url)
        console.print(f"OpenAI base URL [bold green]{server.base_url}[/]  model [bold]{server.served_model_name}[/]"
                      "  - Ctrl-C to stop")
        while True:
            if not server.running:
                raise click.ClickException(f"vLLM exited unexpectedly; see {server.log_path}")
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.print("stopping vLLM...")
    except VLLMError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        server.stop()
