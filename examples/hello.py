"""The smallest catzilla app: python examples/hello.py, then curl http://127.0.0.1:8000/"""

from catzilla import Catzilla, JSONResponse, Request, Response

app = Catzilla()


@app.get("/")
def home(request: Request) -> Response:
    return JSONResponse({"message": "Hello from catzilla!"})


@app.get("/hello/{name}")
def hello(request: Request) -> Response:
    return Response("Hello, %s!" % request.path_params["name"])


if __name__ == "__main__":
    app.listen(port=8000)
