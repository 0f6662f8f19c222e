"""Drives `process-guardian mcp` with the official MCP Python SDK's stdio
client: initialize, list the tools, run a process, read its status and
logs, stop it. Prints one JSON object with what it saw; exits non-zero on
any failure. Usage: client.py BINARY WORKSPACE"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def attr(obj, snake, camel):
    """The SDK's field, by its current (snake_case) or earlier (camelCase) name."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def text_of(result):
    assert result.content, result
    return json.loads(result.content[0].text)


async def main(binary, workspace):
    params = StdioServerParameters(command=binary, args=["--workspace", workspace, "mcp"],
                                   env={"PATH": "/usr/local/bin:/usr/bin:/bin",
                                        "PROCESS_GUARDIAN_ALERT_DIR": workspace})
    seen = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            seen["server"] = attr(init, "server_info", "serverInfo").name
            seen["protocol"] = attr(init, "protocol_version", "protocolVersion")
            tools = await session.list_tools()
            seen["tools"] = sorted(t.name for t in tools.tools)
            seen["schemas"] = {t.name: attr(t, "input_schema", "inputSchema") for t in tools.tools}
            run = await session.call_tool("run", {"name": "echoer", "command": "sh -c 'echo hello-from-mcp; exec sleep 600'",
                                                  "timestamps": True})
            seen["run"] = text_of(run)
            seen["run_is_error"] = attr(run, "is_error", "isError")
            waited = await session.call_tool("wait", {"name": "echoer", "for": "running", "timeout": 10})
            seen["wait"] = text_of(waited)
            status = await session.call_tool("status", {"names": ["echoer"]})
            seen["status"] = text_of(status)
            for _ in range(50):
                logs = text_of(await session.call_tool("logs", {"name": "echoer", "lines": 20}))
                if any("hello-from-mcp" in line and not line.startswith("[") for line in logs["lines"]):
                    break
                await asyncio.sleep(0.1)
            seen["logs"] = logs
            stop = await session.call_tool("stop", {"name": "echoer"})
            seen["stop"] = text_of(stop)
            unknown = await session.call_tool("start", {"name": "ghost"})
            seen["unknown"] = text_of(unknown)
            seen["unknown_is_error"] = attr(unknown, "is_error", "isError")
            bad = await session.call_tool("register", {"name": "../evil", "command": "true"})
            seen["bad_name"] = text_of(bad)
            alerts = await session.call_tool("alerts", {"limit": 5})
            seen["alerts"] = text_of(alerts)
    print(json.dumps(seen))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
