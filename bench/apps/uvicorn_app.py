"""Starlette on uvicorn with uvloop and httptools, access log off."""

import common
import uvicorn
from starlette_app import app

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=common.port(), loop="uvloop", http="httptools",
                access_log=False, log_level="warning", backlog=4096)
