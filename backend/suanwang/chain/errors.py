"""Contract custom errors decoded into readable messages (name, then each argument by name)."""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from suanwang.errors import SuanwangError

PANIC_SELECTOR = bytes.fromhex("4e487b71")
ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


class ChainRevert(SuanwangError):
    """A transaction or call was rejected by a contract; `name` and `args` are its custom error."""

    def __init__(self, name: str, args: dict[str, Any], message: str) -> None:
        super().__init__(message)
        self.name = name
        self.args_by_name = args


def _type_string(component: dict[str, Any]) -> str:
    if component["type"].startswith("tuple"):
        inner = ",".join(_type_string(c) for c in component["components"])
        return f"({inner}){component['type'][5:]}"
    return str(component["type"])


def _display(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


class ErrorDecoder:
    """Knows the custom errors of every ABI it is given."""

    def __init__(self, abis: list[list[dict[str, Any]]]) -> None:
        self._errors: dict[bytes, dict[str, Any]] = {}
        for abi in abis:
            for item in abi:
                if item.get("type") == "error":
                    signature = f"{item['name']}({','.join(_type_string(i) for i in item['inputs'])})"
                    self._errors[function_signature_to_4byte_selector(signature)] = item

    def decode(self, data: bytes) -> ChainRevert:
        selector, payload = data[:4], data[4:]
        if selector == ERROR_STRING_SELECTOR:
            (text,) = decode(["string"], payload)
            return ChainRevert("Error", {"message": text}, f"reverted: {text}")
        if selector == PANIC_SELECTOR:
            (code,) = decode(["uint256"], payload)
            return ChainRevert("Panic", {"code": code}, f"reverted with panic code {hex(code)}")
        item = self._errors.get(selector)
        if item is None:
            return ChainRevert("Unknown", {"data": data}, f"reverted with unknown error data 0x{data.hex()}")
        values = decode([_type_string(i) for i in item["inputs"]], payload)
        args = {
            i["name"] or f"arg{n}": to_checksum_address(v) if i["type"] == "address" else v
            for n, (i, v) in enumerate(zip(item["inputs"], values, strict=True))
        }
        shown = ", ".join(f"{k}={_display(v)}" for k, v in args.items())
        return ChainRevert(item["name"], args, f"{item['name']}({shown})")
