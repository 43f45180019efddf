"""A small OSC client for talking to an engine: the CLI and the benchmarks."""

import socket

from pythonosc.osc_message import OscMessage

from livesound.osc.wire import message as osc

__all__ = ["Client", "osc"]  # ``osc``: the one message builder, by its short name


class Client:
    """A UDP OSC client with a blocking receive (replies come to its port)."""

    def __init__(
        self, port: int, host: str = "127.0.0.1", timeout: float = 2.0
    ) -> None:
        self.server = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(
            ("0.0.0.0" if host not in ("127.0.0.1", "localhost") else host, 0)
        )
        self.sock.settimeout(timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def receive(self) -> OscMessage:
        return OscMessage(self.sock.recvfrom(65536)[0])

    def ask(self, data: bytes) -> OscMessage:
        self.send(data)
        return self.receive()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
