"""Privacy (issue 16): an order's specification is readable only by the providers that may run it, and a
job's result only by its buyer (and the provider that produced it).

Two pieces, the same in Python and in the browser (npm `@hpke/core`), fixed by the vectors in
`tests/fixtures/privacy/vectors.json` and described in docs/content.md ("Privacy"):

- `keys`: each party derives an X25519 key pair from its own account key, with no second secret to keep:
  the private key is HKDF-SHA256 (RFC 5869) of its EIP-191 signature over a fixed text naming the purpose
  and the chain. A seller's nodes publish the public key on chain (`NodeSpec.encryptionKey`); a buyer puts
  its result key into the specification it signs.
- `envelope`: content sealed to several recipients: the payload under a random AES-256-GCM key, that key
  sealed to each recipient with HPKE base mode (RFC 9180, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
  AES-128-GCM), and the header (every recipient) authenticated as the payload's associated data.
"""

from suanwang.privacy.envelope import (
    BUYER,
    Envelope,
    Recipient,
    open_envelope,
    parse_envelope,
    seal,
)
from suanwang.privacy.errors import (
    DamagedEnvelopeError,
    EnvelopeError,
    NotEnvelopeError,
    NotRecipientError,
    NotSpecificationError,
)
from suanwang.privacy.keys import (
    NODE_KEY_TEXT,
    RESULT_KEY_TEXT,
    KeyPair,
    derive_key_pair,
    key_message,
    key_pair_from_signature,
    node_key_pair,
    parse_public_key,
    result_key_pair,
)

__all__ = [
    "BUYER",
    "NODE_KEY_TEXT",
    "RESULT_KEY_TEXT",
    "DamagedEnvelopeError",
    "Envelope",
    "EnvelopeError",
    "KeyPair",
    "NotEnvelopeError",
    "NotRecipientError",
    "NotSpecificationError",
    "Recipient",
    "derive_key_pair",
    "key_message",
    "key_pair_from_signature",
    "node_key_pair",
    "open_envelope",
    "parse_envelope",
    "parse_public_key",
    "result_key_pair",
    "seal",
]
