"""Run code in a kernel of a launched Jupyter server, through its API with the person's token."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


async def run_in_kernel(server_url: str, token: str, code: str, timeout: float = 120,
                        kernel_name: str = "python3") -> str:
    """stdout of `code` run in a new kernel (`kernel_name`) of the server at `server_url` (then
    removed)."""
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        response = await client.post(f"{server_url}api/kernels", json={"name": kernel_name})
        response.raise_for_status()
        kernel = response.json()["id"]
        try:
            return await asyncio.wait_for(_execute(server_url, headers, kernel, code), timeout)
        finally:
            await client.delete(f"{server_url}api/kernels/{kernel}")


async def _execute(server_url: str, headers: dict[str, str], kernel: str, code: str) -> str:
    ws_url = server_url.replace("http://", "ws://", 1) + f"api/kernels/{kernel}/channels"
    connection = await websocket_connect(HTTPRequest(ws_url, headers=headers))
    msg_id = uuid.uuid4().hex
    connection.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }))
    out: list[str] = []
    try:
        while True:
            raw = await connection.read_message()
            if raw is None:
                raise AssertionError(f"kernel connection closed; output so far: {''.join(out)!r}")
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError(f"kernel error: {content['ename']}: {content['evalue']}")
            elif kind == "status" and content.get("execution_state") == "idle":
                return "".join(out)
    finally:
        connection.close()
