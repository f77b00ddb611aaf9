"""Raw revert data of contract calls, compared byte for byte with the custom error a test expects.

brownie's revert messages are formatted strings; these helpers read the revert bytes Anvil returns and
encode the expected error from the compiled ABIs, so a test checks the error's name and every argument.
"""

from brownie import web3
from eth_abi import encode


def error_types(containers) -> dict[str, list[str]]:
    """Each custom error's argument types, from the compiled ABIs (one signature per name across them)."""
    found: dict[str, set[tuple[str, ...]]] = {}
    for container in containers:
        for item in container.abi:
            if item["type"] == "error":
                found.setdefault(item["name"], set()).add(tuple(i["type"] for i in item["inputs"]))
    clashes = {name: sigs for name, sigs in found.items() if len(sigs) > 1}
    assert not clashes, f"custom errors with one name and several signatures: {clashes}"
    return {name: list(next(iter(sigs))) for name, sigs in found.items()}


def encode_error(types: dict[str, list[str]], name: str, *args) -> bytes:
    arg_types = types[name]
    selector = web3.keccak(text=f"{name}({','.join(arg_types)})")[:4]
    return bytes(selector) + encode(arg_types, [_abi_value(t, a) for t, a in zip(arg_types, args, strict=True)])


def _abi_value(abi_type: str, value):
    if abi_type == "address":
        return web3.to_checksum_address(str(value))
    if abi_type.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value[2:])
    return value


def eth_call(sender: str, to: str, data: str) -> tuple[bool, bytes]:
    """(succeeded, return or revert data) of the call from `sender` against the latest block."""
    reply = web3.provider.make_request("eth_call", [{"from": sender, "to": to, "data": data}, "latest"])
    if "error" in reply:
        data = reply["error"].get("data") or "0x"
        return False, bytes.fromhex(data[2:] if isinstance(data, str) else "")
    return True, bytes.fromhex(reply["result"][2:])


def describe(types, outcome: tuple[bool, bytes]) -> str:
    ok, data = outcome
    if ok:
        return "success"
    by_selector = {bytes(web3.keccak(text=f"{n}({','.join(t)})")[:4]): n for n, t in types.items()}
    return f"revert {by_selector.get(data[:4], '?')} 0x{data.hex()}"
