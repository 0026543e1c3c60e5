"""A local MJPEG-over-HTTP stream (the protocol of most IP cameras), from the standard
library, to try ``predict --source http://...`` without a camera: tests/test_stream.py
and ``make bench`` (scripts/diagnostics/bench_predict.py) serve one on 127.0.0.1.

Each frame is one JPEG image in a ``multipart/x-mixed-replace`` HTTP response. The same
JPEG images concatenated make a raw ``.mjpeg`` file (``write_mjpeg``) that OpenCV reads
as a video; both decode through OpenCV's FFmpeg backend to the same pixels, so a file
and the stream of its frames can be scored and compared.
"""
from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import cv2
import numpy as np

BOUNDARY = "frame"


def jpeg_frames(video, limit: int = 0, quality: int = 95) -> list[bytes]:
    """The frames of ``video`` (a file OpenCV decodes), each encoded as a JPEG image."""
    cap = cv2.VideoCapture(str(video))
    out = []
    try:
        while not limit or len(out) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise RuntimeError(f"cannot encode frame {len(out)} of {video} as JPEG")
            out.append(buf.tobytes())
    finally:
        cap.release()
    if not out:
        raise RuntimeError(f"{video}: no frame decoded")
    return out


def write_mjpeg(path, jpegs: list[bytes]) -> Path:
    """A raw MJPEG file: the JPEG images one after the other."""
    path = Path(path)
    path.write_bytes(b"".join(jpegs))
    return path


def _handler(jpegs: list[bytes], fps: float | None, sent: list[int], hold, state: dict):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            t0 = time.perf_counter()
            try:
                for i, j in enumerate(jpegs):
                    if hold and i == hold[0]:
                        state["held"] = hold[1].wait(hold[2])
                    if fps:              # a camera's pace; None: as fast as the client reads
                        time.sleep(max(0.0, t0 + i / fps - time.perf_counter()))
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                     f"Content-Length: {len(j)}\r\n\r\n".encode())
                    self.wfile.write(j + b"\r\n")
                    self.wfile.flush()
                    sent[0] += 1
            except (BrokenPipeError, ConnectionResetError):
                pass                     # the client stopped reading

        def log_message(self, *args):
            pass

    return Handler


class MJPEGServer:
    """Serve ``jpegs`` once per request at http://127.0.0.1:PORT/stream.mjpg, from a
    background thread; a context manager (the server stops when the block ends)::

        with MJPEGServer(jpeg_frames("face.avi")) as url:
            ...  cv2.VideoCapture(url) ...

    ``fps``: send at that pace, as a camera would (None: as fast as the client reads).
    ``hold``: (frame index k, threading.Event, timeout s): before frame k, wait until the
    event is set or the timeout passes; ``held`` then says which (True: the event).
    ``sent``: frames written so far (all requests together).
    """

    def __init__(self, jpegs: list[bytes], fps: float | None = None, hold=None):
        self._sent = [0]
        self.state = {"held": None}
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), _handler(jpegs, fps, self._sent, hold, self.state))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def sent(self) -> int:
        return self._sent[0]

    @property
    def held(self) -> bool | None:
        return self.state["held"]

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=10)
