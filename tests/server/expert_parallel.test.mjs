// dsv3 serve expert-parallel: the same server under `mpirun -np 1`, `-np 2` and `-np 3` (with
// speculative drafts on the last) gives the official `openai` client the same answers and the
// same log-probabilities, bit for bit, for requests alone and for 8 concurrent streams that
// the engine batches together (prefill, decode and MTP steps all cross ranks).
// Run: node --test tests/server/  (scripts/test.sh does, after building build/dsv3).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startServe } from './serve_helper.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dsv3 = process.env.DSV3_BINARY || path.join(root, 'build/dsv3');
const haveMpi = (() => {
  try {
    execSync('command -v mpirun', { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const servers = [];
const clients = {};

const bases = {};
async function start(ranks, draft) {
  const { child, base } = await startServe(dsv3, ['--model', path.join(root, 'default-model'), '--served-model-name', 'kjv',
    '--ctx-size', '512', '--max-seqs', '8', '--draft', draft], { ranks });
  servers.push(child);
  bases[ranks] = base;
  return new OpenAI({ apiKey: 'none', baseURL: `${base}/v1`, maxRetries: 0, timeout: 120000 });
}

before(async () => {
  if (!haveMpi) return;
  clients.one = await start(1, '0');
  clients.two = await start(2, '0');
  clients.three = await start(3, '2');
});

after(() => {
  for (const p of servers) p.kill('SIGTERM');
});

const prompts = ['In the beginning', 'And the LORD said', 'Blessed are they', 'Of Abraham', 'The kingdom of heaven',
  'Moses went up', 'And it came to pass', 'Praise ye the LORD'];
const complete = (prompt, extra = {}) => ({ model: 'kjv', prompt, max_tokens: 16, temperature: 0, logprobs: 3, ...extra });

// Everything the answer says about its tokens: text, chosen tokens' log-probabilities, top-3s.
const answer = (r) => JSON.stringify(r.choices.map((c) => [c.text, c.logprobs]));

test('answers and log-probabilities equal one process\'s, alone and batched', { skip: !haveMpi && 'mpirun not found' }, async () => {
  const want = [];
  for (const p of prompts) want.push(answer(await clients.one.completions.create(complete(p))));
  for (const name of ['two', 'three']) {
    const alone = [];
    for (const p of prompts) alone.push(answer(await clients[name].completions.create(complete(p))));
    assert.deepEqual(alone, want, `${name}, one request at a time`);
    const batched = await Promise.all(prompts.map(async (p) => answer(await clients[name].completions.create(complete(p)))));
    assert.deepEqual(batched, want, `${name}, 8 requests at once`);
  }
});

test('seeded sampling in concurrent streams matches one process', { skip: !haveMpi && 'mpirun not found' }, async () => {
  const ask = (content, seed) => ({ model: 'kjv', messages: [{ role: 'user', content }], temperature: 0.9, top_p: 0.95,
    seed, max_tokens: 24, stream: true });
  const text = async (stream) => {
    let s = '';
    for await (const c of stream) s += c.choices.map((x) => x.delta?.content ?? '').join('');
    return s;
  };
  const run = (client) => Promise.all(prompts.map(async (p, i) => text(await client.chat.completions.create(ask(p, i + 1)))));
  const want = await run(clients.one);
  assert.deepEqual(await run(clients.two), want);
  assert.deepEqual(await run(clients.three), want);
});

test('/metrics counts the bytes and time of expert parallelism', { skip: !haveMpi && 'mpirun not found' }, async () => {
  const m = await (await fetch(`${bases[2]}/metrics`)).text();
  const value = (name) => Number((m.match(new RegExp(`^${name} ([0-9.e+-]+)`, 'm')) ?? [0, NaN])[1]);
  assert.equal(value('dsv3_expert_parallel_ranks'), 2);
  assert.ok(value('dsv3_expert_parallel_bytes_sent_total') > 0);
  assert.ok(value('dsv3_expert_parallel_bytes_received_total') > value('dsv3_expert_parallel_bytes_sent_total'));
  assert.ok(value('dsv3_expert_parallel_remote_layer_calls_total') > 0);
  const one = await (await fetch(`${bases[1]}/metrics`)).text();
  assert.doesNotMatch(one, /dsv3_expert_parallel_/, 'one process has no expert-parallel figures');
});
