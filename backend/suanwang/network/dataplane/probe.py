"""What this machine's kernel can do for the SRv6 data plane, probed before relying on it.

Machines of one kind differ: one checked here had no SRv6 lightweight tunnels at all
(`# CONFIG_IPV6_SEG6_LWTUNNEL is not set`; every seg6 or seg6local route fails with EOPNOTSUPP,
"Operation not supported"). The probe tries the one operation everything else needs, a seg6local route,
in a throwaway namespace, and names the missing kernel option when it fails, so callers can say in one
line what is missing instead of failing deep inside a lab.
"""

from __future__ import annotations

import gzip
import os
import subprocess
from functools import cache
from pathlib import Path

KERNEL_CONFIG = Path("/proc/config.gz")
SRV6_OPTION = "CONFIG_IPV6_SEG6_LWTUNNEL"


def _kernel_option_unset(option: str) -> bool:
    """True when the running kernel's config says `# <option> is not set` (False when it cannot be read)."""
    try:
        with gzip.open(KERNEL_CONFIG, "rt", encoding="utf-8") as config:
            return any(line.strip() == f"# {option} is not set" for line in config)
    except OSError:
        return False


@cache
def srv6_missing() -> str | None:
    """None when this process can program SRv6 in namespaces; otherwise one line saying what is missing."""
    if os.geteuid() != 0:
        return "the SRv6 data plane needs root (network namespaces and veth links); run as root, e.g. in CI"
    if _kernel_option_unset(SRV6_OPTION):
        return f"this kernel has no SRv6 ({SRV6_OPTION} is not set in {KERNEL_CONFIG}): seg6 routes are unsupported"
    namespace = f"sw-probe-{os.getpid()}"
    try:
        subprocess.run(["ip", "netns", "add", namespace], check=True, capture_output=True, text=True)
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True, capture_output=True)
        tried = subprocess.run(
            ["ip", "-n", namespace, "-6", "route", "add", "fc00:5a::1/128", "encap", "seg6local", "action", "End",
             "dev", "lo"],
            capture_output=True, text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        return f"network namespaces are unavailable here ({str(detail).strip()})"
    finally:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    if tried.returncode != 0:
        return (f"this kernel refuses SRv6 routes ({tried.stderr.strip() or 'seg6local failed'}; "
                f"{SRV6_OPTION} is probably not set)")
    return None
