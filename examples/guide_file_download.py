# Streaming guide, "Advanced Streaming Patterns / Chunked File Streaming".
#
# Changes from the guide's code:
# - The existence check is `file_path.is_file()` instead of `file_path.exists()`. For a
#   directory (GET /download/. names uploads/ itself) the guide's code answered 200 with the
#   directory's st_size (4096) as Content-Length, then open() raised IsADirectoryError in the
#   generator and the client got a cut-off body; now it is a 404 like any missing file.
# - The Content-Disposition value is built by `content_disposition(filename)` instead of
#   f"attachment; filename={filename}". The guide's f-string gave a 500 for a name outside
#   Latin-1 (日本.txt: a header must be Latin-1) and a malformed header for a name with a `"`
#   or `;` in it; the helper quotes the name and adds filename*= (RFC 8187) when needed.
# - app.listen(port=8000) takes the port from the PORT environment variable (default 8000) and
#   the host from HOST (default "0.0.0.0", catzilla's default), so the example can run on any
#   port (the tests use a free loopback port).
#
# Files are served from uploads/ relative to the working directory. Path traversal is refused
# by catzilla, not by this code: a path parameter that percent-decodes to an absolute path, a
# ".." segment or a NUL byte is answered 400 before the handler runs, so
# GET /download/..%2Fsecret.txt never reaches `Path("uploads") / filename`
# (tests/test_examples.py checks this).
# ruff: noqa: I001  (the guide's code is kept as written)
from catzilla import Catzilla, Request, Response, StreamingResponse, JSONResponse
from catzilla import content_disposition
import os
from pathlib import Path

app = Catzilla()


def file_streamer(file_path, chunk_size=8192):
    """Stream file in chunks"""
    with open(file_path, "rb") as file:
        while True:
            chunk = file.read(chunk_size)
            if not chunk:
                break
            yield chunk


@app.get("/download/{filename}")
def stream_file_download(request: Request) -> Response:
    """Stream large file download"""
    filename = request.path_params["filename"]
    file_path = Path("uploads") / filename

    if not file_path.is_file():
        return JSONResponse({"error": "File not found"}, status_code=404)

    # Get file size for Content-Length header
    file_size = file_path.stat().st_size

    return StreamingResponse(
        file_streamer(file_path),
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": content_disposition(filename),
            "Content-Length": str(file_size)
        }
    )


if __name__ == "__main__":
    # Create uploads directory if it doesn't exist
    Path("uploads").mkdir(exist_ok=True)
    print("🚀 Starting file streaming server...")
    print("Try: curl http://localhost:8000/download/sample.txt")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
