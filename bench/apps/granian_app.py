"""Starlette on granian: ASGI interface, 1 worker, access log off."""

import common
from granian import Granian
from granian.constants import Interfaces

if __name__ == "__main__":
    Granian("starlette_app:app", address="127.0.0.1", port=common.port(),
            interface=Interfaces.ASGI, workers=1, log_access=False, backlog=4096).serve()
