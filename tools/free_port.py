"""Prints a TCP port on 127.0.0.1 that is free now (the kernel picks it), or the wanted one if free."""

import socket
import sys


def free_port(wanted: int = 0) -> int:
    for candidate in ([wanted] if wanted else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


if __name__ == "__main__":
    print(free_port(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
