# SPDX-License-Identifier: GPL-2.0-or-later
"""
A minimal synchronous QMP client (QEMU Machine Protocol: line-delimited JSON).

The factory drives several guests from worker threads. qemu.qmp's synchronous
"legacy" wrapper runs an asyncio event loop per call and failed intermittently
(EOFError) when two guests were dumped at once, so the three commands the
factory needs are spoken directly over the UNIX socket.
"""

from __future__ import annotations

import json
import socket
from typing import Any

__all__ = ["QMPError", "QMPClient"]


class QMPError(RuntimeError):
    pass


class QMPClient:
    def __init__(self, path: str, timeout: float = 600.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.rfile = self.sock.makefile("rb")
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError(f"unexpected QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        line = self.rfile.readline()
        if not line:
            raise QMPError("QMP connection closed")
        msg: dict[str, Any] = json.loads(line)
        return msg

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run ``command``; return its result, raise QMPError on an error reply."""
        req: dict[str, Any] = {"execute": command}
        if arguments:
            req["arguments"] = arguments
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            msg = self._read()
            if "event" in msg:
                continue
            if "error" in msg:
                raise QMPError(f"{command}: {msg['error'].get('desc', msg['error'])}")
            return msg.get("return")

    def close(self) -> None:
        try:
            self.rfile.close()
        finally:
            self.sock.close()
