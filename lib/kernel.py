"""The Jupyter kernel a chapter runs in: encrypted transport, and no shutdown race on Ctrl-C.

Two things the stock kernel manager does that a chapter run should not:

- Its kernel talks over local TCP in plain text, and ipykernel warns about it on every run.
  ipykernel's kernelspec declares CurveZMQ support, so when pyzmq has Curve the manager
  provisions keys (``transport_encryption='auto'``) and the traffic is encrypted.
- On Ctrl-C (or SIGTERM), nbclient asks for a graceful shutdown while a cell is running: the
  manager interrupts the kernel and at once sends it a shutdown request, so the interrupted cell
  replies on a closed socket and the kernel prints a ZMQ traceback ("Socket operation on
  non-socket"). The run is discarded anyway, so a kernel stopped in the middle of a cell is shut
  down at once (interrupt, then kill its process group). A kernel that got to the end of its
  notebook, or stopped at a failing cell, still gets the graceful shutdown.

Use :func:`execution_options` as keyword arguments of ``papermill.execute_notebook``.
"""

from __future__ import annotations

from typing import Any

import zmq
from jupyter_client.manager import AsyncKernelManager
from traitlets import default

# Whether a cell was sent to the kernel and its reply has not come back. One chapter runs at a
# time in a runner process (parallel book runs are separate processes), so one flag will do.
_cell_running = False


def _cell_sent(**_: Any) -> None:
    global _cell_running
    _cell_running = True


def _cell_replied(**_: Any) -> None:
    global _cell_running
    _cell_running = False


def cell_running() -> bool:
    """True between a cell's execute request and its reply (an error reply counts as a reply)."""
    return _cell_running


class ChapterKernelManager(AsyncKernelManager):
    """``AsyncKernelManager`` for a chapter run (papermill's ``kernel_manager_class``)."""

    @default("transport_encryption")
    def _transport_encryption_default(self) -> str:
        return "auto" if zmq.has("curve") else "disabled"

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        await super()._async_shutdown_kernel(now=now or cell_running(), restart=restart)

    shutdown_kernel = _async_shutdown_kernel  # the async manager's public name for it


def execution_options() -> dict[str, Any]:
    """papermill.execute_notebook keyword arguments (passed on to nbclient) for a chapter run."""
    _cell_replied()
    return {"kernel_manager_class": ChapterKernelManager,
            "on_cell_execute": _cell_sent, "on_cell_executed": _cell_replied}
