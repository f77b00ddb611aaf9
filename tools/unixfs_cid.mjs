#!/usr/bin/env node
// Print, one line per file argument, the CID that npm's ipfs-unixfs-importer gives each file when set up
// as Kubo's `ipfs add --cid-version 1 --raw-leaves` (chunker size-262144, balanced layout of at most 174
// links per node). The Python content store's own DAG builder (backend/suanwang/content/unixfs.py) is held
// equal to this independent implementation by tests/backend/content/test_unixfs_importer.py.
//
// Usage: node tools/unixfs_cid.mjs FILE...
import { createReadStream } from 'node:fs'
import { BlackHoleBlockstore } from 'blockstore-core'
import { importByteStream } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

const KUBO_OPTIONS = {
  cidVersion: 1,
  rawLeaves: true,
  // Kubo's defaults: chunker size-262144, and boxo helpers.DefaultLinksPerBlock = 174.
  chunker: fixedSize({ chunkSize: 262144 }),
  layout: balanced({ maxChildrenPerNode: 174 }),
  // A file of one chunk is that chunk's raw block, as in boxo's balanced.Layout.
  reduceSingleLeafToSelf: true
}

if (process.argv.length < 3) {
  console.error('usage: node tools/unixfs_cid.mjs FILE...')
  process.exit(2)
}
// Only the CID is wanted, so the blocks go nowhere.
const blockstore = new BlackHoleBlockstore()
for (const path of process.argv.slice(2)) {
  const result = await importByteStream(createReadStream(path), blockstore, KUBO_OPTIONS)
  console.log(result.cid.toString())
}
