"""Fixed-bytes ceiling server on uvloop: python ceiling_app.py --port N."""

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / ".cache" / "ceiling"))
import ceiling_proto  # noqa: E402  (compiled .so from bench/.cache when it exists)
import uvloop  # noqa: E402


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(ceiling_proto.Ceiling, "127.0.0.1", port, backlog=4096)
    kind = "cython" if not ceiling_proto.__file__.endswith(".py") else "pure python"
    print(f"ceiling ({kind}) on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--reset-on-close", action="store_true",
                    help="end Connection: close exchanges with a reset instead of FIN")
    args = ap.parse_args()
    ceiling_proto.reset_on_close(args.reset_on_close)
    try:
        uvloop.run(main(args.port))
    except KeyboardInterrupt:
        pass
