#!/usr/bin/env node
// Runs a tokenizer written by `dsv3 train-tokenizer` through Hugging Face's own libraries, for
// tests/train_tokenizer_test.cc to compare with dsv3 (which runs this script live):
//   npm `tokenizers` (HF's Rust tokenizer) loads DIR/tokenizer.json, encodes every text and
//   decodes the ids (with and without special tokens);
//   @huggingface/jinja renders DIR/tokenizer_config.json's chat_template for every conversation.
//
//   node scripts/train_tokenizer_check.js DIR < request.json > answer.json
//
// request.json: {"texts": [string...], "conversations": [{"messages": [...], "tools": [...],
//                "add_generation_prompt": bool}...]}
// answer.json:  {"vocab_size": n, "ids": [[id...]...], "decoded": [...], "decoded_skip_special": [...],
//                "rendered": [string | {"error": message}...]}
// ids are encode(text, addSpecialTokens=false): the file's post-processor adds nothing, and the
// BOS that transformers adds for add_bos_token is the caller's business, as in dsv3.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
function need(name) {
  try {
    return require(path.join(root, 'node_modules', name));
  } catch (e) {
    console.error(`train_tokenizer_check: npm package ${name} missing; run scripts/setup.sh`);
    process.exit(3);
  }
}
const { Tokenizer } = need('tokenizers');
const { Template } = need('@huggingface/jinja');

async function main() {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node scripts/train_tokenizer_check.js DIR < request.json');
    process.exit(2);
  }
  const request = JSON.parse(fs.readFileSync(0, 'utf8'));
  const tok = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const text = (t) => (t && typeof t === 'object' ? t.content : t);

  const answer = { vocab_size: tok.getVocabSize(true), ids: [], decoded: [], decoded_skip_special: [], rendered: [] };
  for (const t of request.texts || []) {
    const ids = (await tok.encode(t, null, { addSpecialTokens: false })).getIds();
    answer.ids.push(ids);
    answer.decoded.push(await tok.decode(ids, false));
    answer.decoded_skip_special.push(await tok.decode(ids, true));
  }
  const template = new Template(config.chat_template);
  for (const c of request.conversations || []) {
    try {
      answer.rendered.push(template.render({ ...c, bos_token: text(config.bos_token), eos_token: text(config.eos_token) }));
    } catch (e) {
      answer.rendered.push({ error: String(e.message || e) });
    }
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}

main().catch((e) => {
  console.error('train_tokenizer_check: ' + (e.stack || e));
  process.exit(1);
});
