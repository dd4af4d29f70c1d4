// dsv3 serve with speculative decoding: two servers on the trained default model (its MTP
// module drafts well), one forced to draft 3 tokens per step and one without drafts. The
// official `openai` client gets the same answers from both, alone and as 8 concurrent
// streams in one continuous batch; usage reports the drafts the way OpenAI reports predicted
// outputs, and /metrics counts them.
// Run: node --test tests/server/  (scripts/test.sh does, after building build/dsv3).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startServe } from './serve_helper.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dsv3 = process.env.DSV3_BINARY || path.join(root, 'build/dsv3');
const servers = [];

async function start(draft) {
  const { child, base } = await startServe(dsv3, ['--model', path.join(root, 'default-model'), '--served-model-name', 'kjv',
    '--ctx-size', '512', '--max-seqs', '8', '--draft', draft]);
  servers.push(child);
  return { base, client: new OpenAI({ apiKey: 'none', baseURL: `${base}/v1`, maxRetries: 0, timeout: 120000 }) };
}

let drafting, plain;
before(async () => {
  drafting = await start('3');
  plain = await start('0');
});

after(() => {
  for (const p of servers) p.kill('SIGTERM');
});

const prompts = ['Who made the heaven and the earth?', 'Tell me of Moses.', 'What did Jesus say?', 'Recite a psalm.',
  'In the beginning', 'Blessed are they', 'And the LORD said', 'Of Abraham'];
const ask = (content, extra = {}) => ({
  model: 'kjv', messages: [{ role: 'user', content }], temperature: 0, max_tokens: 40, ...extra,
});

async function text(stream) {
  let s = '';
  for await (const c of stream) s += c.choices.map((x) => x.delta?.content ?? '').join('');
  return s;
}

test('greedy answers equal the plain server\'s, alone and in a batch of 8', async () => {
  const want = [];
  for (const p of prompts) want.push((await plain.client.chat.completions.create(ask(p))).choices[0].message.content);
  const alone = [];
  let accepted = 0, rejected = 0;
  for (const p of prompts) {
    const r = await drafting.client.chat.completions.create(ask(p));
    alone.push(r.choices[0].message.content);
    const d = r.usage.completion_tokens_details;
    assert.ok(d, 'usage.completion_tokens_details');
    accepted += d.accepted_prediction_tokens;
    rejected += d.rejected_prediction_tokens;
  }
  assert.deepEqual(alone, want);
  assert.ok(accepted > 0 && rejected > 0, `accepted ${accepted}, rejected ${rejected}`);
  const batched = await Promise.all(prompts.map(async (p) => text(await drafting.client.chat.completions.create(ask(p, { stream: true })))));
  assert.deepEqual(batched, want);
});

test('seeded sampling gives the plain server\'s tokens', async () => {
  for (const seed of [1, 2, 3]) {
    const q = ask('Sing of the sea.', { temperature: 0.9, top_p: 0.95, seed, max_tokens: 30 });
    const a = (await drafting.client.chat.completions.create(q)).choices[0].message.content;
    const b = (await plain.client.chat.completions.create(q)).choices[0].message.content;
    assert.equal(a, b, `seed ${seed}`);
  }
});

test('drafts are counted in /metrics', async () => {
  const m = await (await fetch(`${drafting.base}/metrics`)).text();
  const value = (name) => Number((m.match(new RegExp(`^${name} (\\d+)`, 'm')) ?? [0, 0])[1]);
  assert.ok(value('dsv3_draft_steps_total') > 0);
  assert.ok(value('dsv3_draft_tokens_total') > value('dsv3_draft_accepted_tokens_total'));
  assert.ok(value('dsv3_draft_accepted_tokens_total') > 0);
  assert.ok(value('dsv3_draft_first_accepted_total') <= value('dsv3_draft_first_tokens_total'));
  const p = await (await fetch(`${plain.base}/metrics`)).text();
  assert.match(p, /^dsv3_draft_tokens_total 0$/m);
});
