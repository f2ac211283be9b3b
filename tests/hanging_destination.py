"""A "server" that accepts connections and never answers, for delivery tests.

:class:`HangingDestination` listens on the store port of the job ids of
``127.0.0.1:<port>`` (``port + 1``) in a thread. ``mode="silent"``: it accepts,
reads whatever comes and never writes a byte (the interlogger's handshake hangs).
``mode="welcomes"``: it completes the box handshake (the preamble and a
``Welcome``) and then never answers a batch (the acknowledgement hangs).
"""

from __future__ import annotations

import selectors
import socket
import threading

from daemon_support import free_port_pair
from lbtx.protocols.box.codec import MAGIC, BoxDecoder
from lbtx.protocols.box.messages import PROTOCOL_VERSIONS, Welcome, encode_message


class HangingDestination:
    def __init__(self, mode: str = "silent"):
        assert mode in ("silent", "welcomes")
        self.mode = mode
        self.port = free_port_pair()
        self.accepted = 0
        self.received = 0
        #: bytes received after the handshake (batches never answered)
        self.unanswered = 0
        #: the address of each connection accepted
        self.peers: list = []
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port + 1))
        self._listener.listen(64)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"hanging-{mode}", daemon=True)
        self._thread.start()

    @property
    def server_name(self) -> str:
        """The host:port of job ids owned by this destination."""
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.1):
                if key.data is None:
                    conn, peer = self._listener.accept()
                    with self._lock:
                        self.accepted += 1
                        self.peers.append(peer)
                    decoder = BoxDecoder(preamble=MAGIC) if self.mode == "welcomes" else None
                    self._selector.register(conn, selectors.EVENT_READ, [decoder])
                else:
                    self._readable(key.fileobj, key.data)

    def _readable(self, conn: socket.socket, state: list) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._selector.unregister(conn)
            conn.close()
            return
        with self._lock:
            self.received += len(data)
        decoder = state[0]
        if decoder is None:
            if self.mode == "welcomes":
                with self._lock:
                    self.unanswered += len(data)
            return
        boxes = decoder.feed(data)
        if boxes:   # the Hello: welcome the client, then hang for good
            hello_id = int(boxes[0]["_ask"])
            conn.sendall(MAGIC + encode_message(Welcome(hello_id, PROTOCOL_VERSIONS[-1])))
            state[0] = None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()
        self._selector.close()
