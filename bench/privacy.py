"""Privacy bench: what sealing costs per order (issue 16).

Two pieces of an order's life, each sealed and opened as the service, the provider and the buyer do it
(`suanwang.privacy`), against the baseline measured in the same run: plain AES-256-GCM (one key, one
nonce, no recipients, no base64, no JSON) encrypting and decrypting the same bytes, the least any
encryption of them costs.

- spec: a job specification (a command of a few words and the buyer's result key) sealed to 4 candidate
  nodes and the buyer, then opened by one node (one HPKE open: X25519 plus two HKDFs, then the payload);
- result: 1 MiB of random job output sealed to the buyer and the node, then opened by the buyer.

Each figure is the median of ``--repeats`` runs (microseconds for the spec, milliseconds for the result).
Writes the ``sealing`` section of bench/results/privacy.json.

Run: .venv/bin/python bench/privacy.py [--repeats 50]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from support.report import record  # bench/ is on sys.path when run as a script

from suanwang.privacy import BUYER, Recipient, node_key_pair, open_envelope, result_key_pair, seal
from suanwang.privacy.documents import seal_spec, spec_plaintext

MIB = 1024 * 1024
CANDIDATES = 4
CHAIN_ID = 31337


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def plain_aes_gcm(data: bytes) -> Callable[[], object]:
    """The baseline: AES-256-GCM over `data` and back, with a fresh key and nonce."""

    def run() -> object:
        key, nonce = AESGCM.generate_key(bit_length=256), secrets.token_bytes(12)
        cipher = AESGCM(key)
        return cipher.decrypt(nonce, cipher.encrypt(nonce, data, None), None)

    return run


def measure(repeats: int) -> dict[str, object]:
    nodes = [node_key_pair(secrets.token_bytes(32), CHAIN_ID) for _ in range(CANDIDATES)]
    buyer = result_key_pair(secrets.token_bytes(32), CHAIN_ID)
    command = ["python3", "train.py", "--epochs", "3", "--data", "s3://bucket/set"]
    spec = seal_spec(command, buyer, [(i + 1, k.public_key) for i, k in enumerate(nodes)])
    opener = nodes[-1]  # the last recipient: the opener looks its entry up
    spec_seal = median_seconds(
        lambda: seal_spec(command, buyer, [(i + 1, k.public_key) for i, k in enumerate(nodes)]), repeats
    )
    spec_open = median_seconds(lambda: open_envelope(spec, opener.public_key, opener.private_key), repeats)
    spec_base = median_seconds(plain_aes_gcm(spec_plaintext(command, buyer.public_key)), repeats)

    output = secrets.token_bytes(MIB)
    to = [Recipient(buyer.public_key, role=BUYER), Recipient(nodes[0].public_key, node=1)]
    result = seal(output, to)
    result_seal = median_seconds(lambda: seal(output, to), repeats)
    result_open = median_seconds(lambda: open_envelope(result, buyer.public_key, buyer.private_key), repeats)
    result_base = median_seconds(plain_aes_gcm(output), repeats)
    return {
        "spec_to_4_candidates": {
            "plaintext_bytes": len(spec_plaintext(command, buyer.public_key)),
            "envelope_bytes": len(spec),
            "seal_us": round(spec_seal * 1e6, 1),
            "open_us": round(spec_open * 1e6, 1),
            "plain_aes_gcm_encrypt_and_decrypt_us": round(spec_base * 1e6, 1),
            "seal_and_open_time_ratio_to_plain_aes_gcm": round((spec_seal + spec_open) / spec_base, 1),
        },
        "result_1_mib": {
            "plaintext_bytes": len(output),
            "envelope_bytes": len(result),
            "seal_ms": round(result_seal * 1e3, 2),
            "open_ms": round(result_open * 1e3, 2),
            "plain_aes_gcm_encrypt_and_decrypt_ms": round(result_base * 1e3, 2),
            "seal_and_open_time_ratio_to_plain_aes_gcm": round((result_seal + result_open) / result_base, 2),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    load_before = os.getloadavg()
    figures = measure(args.repeats)
    section = {
        "repeats": args.repeats,
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **figures,
    }
    path = record("privacy", "sealing", section)
    spec, result = figures["spec_to_4_candidates"], figures["result_1_mib"]
    assert isinstance(spec, dict) and isinstance(result, dict)
    print(
        f"spec to {CANDIDATES} candidates: seal {spec['seal_us']} us, open {spec['open_us']} us, "
        f"{spec['seal_and_open_time_ratio_to_plain_aes_gcm']}x plain AES-GCM "
        f"({spec['plain_aes_gcm_encrypt_and_decrypt_us']} us)"
    )
    print(
        f"1 MiB result: seal {result['seal_ms']} ms, open {result['open_ms']} ms, "
        f"{result['seal_and_open_time_ratio_to_plain_aes_gcm']}x plain AES-GCM "
        f"({result['plain_aes_gcm_encrypt_and_decrypt_ms']} ms)"
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
