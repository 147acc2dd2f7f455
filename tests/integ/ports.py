"""Loopback TCP ports for servers a test starts later (hikyaku's listeners and API).

Asking the kernel for port 0 hands out a port from the ephemeral range, the same range every
outgoing connection takes its local port from: between the moment a test picks such a port and
the moment the daemon binds it, a client or relay connection may take it ("Address already in
use" at start). Ports here come from below the ephemeral range (read from
/proc/sys/net/ipv4/ip_local_port_range), where outgoing connections never go, are bindable right
now, and are never handed out twice in one test process.
"""

import random
import socket
import threading

_lock = threading.Lock()
_given = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_LOW = 10000
_HIGH = min(_ephemeral_low(), 65536) - 1


def _bindable(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _kernel_port(host):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                       socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port(host="127.0.0.1", hosts=None):
    """A port free on host (or on every one of hosts) now and not handed out before."""
    hosts = list(hosts or [host])
    with _lock:
        if _HIGH - _LOW < 1000:
            # An unusual ephemeral range: fall back to the kernel's choice.
            for _ in range(100):
                p = _kernel_port(hosts[0])
                if p not in _given and all(_bindable(h, p) for h in hosts):
                    _given.add(p)
                    return p
        else:
            if len(_given) > (_HIGH - _LOW) // 2:
                _given.clear()
            for _ in range(1000):
                p = random.randint(_LOW, _HIGH)
                if p not in _given and all(_bindable(h, p) for h in hosts):
                    _given.add(p)
                    return p
    raise AssertionError("no free port on %r" % (hosts,))
