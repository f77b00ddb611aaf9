// The privacy vectors (tests/fixtures/privacy/vectors.json) run on the web app's privacy module, in any
// runtime with WebCrypto: `check(privacy, vectors)` gives the failures (none when the format holds) and an
// envelope sealed here, for the Python side to open.
export async function check(privacy, vectors) {
  const failures = [];
  const expectEqual = (what, got, want) => {
    if (got !== want) failures.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  const expectThrows = async (what, errorClass, run) => {
    try {
      await run();
      failures.push(`${what}: opened, but should have failed with ${errorClass.name}`);
    } catch (e) {
      if (!(e instanceof errorClass)) failures.push(`${what}: ${e?.constructor?.name}: ${e?.message}, not ${errorClass.name}`);
    }
  };
  const utf8 = (text) => new TextEncoder().encode(text);
  const text = (bytes) => new TextDecoder().decode(bytes);

  // Keys: the text signed, and the pair HKDF derives from the signature.
  const purposes = { node: privacy.NODE_KEY_TEXT, result: privacy.RESULT_KEY_TEXT };
  for (const [name, key] of Object.entries(vectors.keys)) {
    expectEqual(`${name} key text`, privacy.keyMessage(purposes[name], vectors.chain_id), key.message);
    const pair = await privacy.keyPairFromSignature(key.signature, key.message);
    expectEqual(`${name} private key`, privacy.toHex(pair.privateKey), key.private_key);
    expectEqual(`${name} public key`, pair.publicHex, key.public_key);
    // A wallet answering v as 0 or 1 derives the same key.
    const low = key.signature.slice(0, -2) + (parseInt(key.signature.slice(-2), 16) - 27).toString(16).padStart(2, '0');
    expectEqual(`${name} public key (v as 0/1)`, (await privacy.keyPairFromSignature(low, key.message)).publicHex, key.public_key);
  }

  // The vector envelope opens for each of its recipients, to the specification's exact bytes.
  const v = vectors.envelope;
  const envelope = utf8(v.envelope_utf8);
  for (const k of v.opens_with) {
    const key = { privateKey: privacy.fromHex(k.private_key), publicKey: privacy.fromHex(k.public_key) };
    expectEqual(`vector envelope opened by ${k.public_key.slice(0, 10)}`, text(await privacy.openEnvelope(envelope, key)), v.plaintext_utf8);
  }
  const spec = JSON.parse(v.plaintext_utf8);
  expectEqual('specification plaintext', text(privacy.specPlaintext(spec.command, privacy.fromHex(spec.result_key))), v.plaintext_utf8);
  expectEqual('canonical JSON of the vector envelope', privacy.canonical(JSON.parse(v.envelope_utf8)), v.envelope_utf8);
  expectEqual('canonical JSON escapes as Python does', privacy.canonical({ b: 'é\u007f😀', a: [1] }), '{"a":[1],"b":"\\u00e9\\u007f\\ud83d\\ude00"}');

  // An envelope sealed here has the vector's shape (field names, order, sizes) and opens for each recipient.
  const [nodeKey, buyerKey] = v.opens_with.map((k) => ({ privateKey: privacy.fromHex(k.private_key), publicKey: privacy.fromHex(k.public_key) }));
  const sealed = await privacy.sealSpec(spec.command, { ...buyerKey, publicHex: privacy.toHex(buyerKey.publicKey) }, [{ node: 12, key: nodeKey.publicKey }]);
  const shape = (t) => JSON.stringify(JSON.parse(t), (k, x) => (typeof x === 'string' && k !== 'pk' && k !== 'role' ? `${k}:${x.length}` : x));
  const sealedText = text(sealed);
  expectEqual('shape of a sealed envelope', shape(sealedText).replace(/"ct:\d+"/, 'ct'), shape(v.envelope_utf8).replace(/"ct:\d+"/, 'ct'));
  expectEqual('a sealed envelope is canonical JSON', privacy.canonical(JSON.parse(sealedText)), sealedText);
  for (const key of [nodeKey, buyerKey]) expectEqual('own envelope opened', text(await privacy.openEnvelope(sealed, key)), v.plaintext_utf8);

  // Changed headers and strangers' keys are refused with the backend's error kinds.
  const changed = (edit) => {
    const doc = JSON.parse(v.envelope_utf8);
    edit(doc);
    return utf8(JSON.stringify(doc));
  };
  await expectThrows('a recipient renumbered', privacy.DamagedEnvelopeError, () => privacy.openEnvelope(changed((d) => (d.recipients[0].node = 13)), buyerKey));
  await expectThrows('a recipient dropped', privacy.DamagedEnvelopeError, () => privacy.openEnvelope(changed((d) => d.recipients.splice(0, 1)), buyerKey));
  await expectThrows('another key', privacy.NotRecipientError, () => privacy.openEnvelope(envelope, { ...buyerKey, publicKey: new Uint8Array(32).fill(7) }));
  await expectThrows('another version', privacy.NotEnvelopeError, () => privacy.openEnvelope(changed((d) => (d.v = 2)), buyerKey));
  await expectThrows('another suite', privacy.NotEnvelopeError, () => privacy.openEnvelope(changed((d) => (d.suite = [32, 1, 2])), buyerKey));
  return { failures, sealed: privacy.toBase64(sealed) };
}
