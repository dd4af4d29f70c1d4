// dsv3 serve as lm-evaluation-harness's `local-completions` model talks to it: the request
// shapes the harness sends (loglikelihood: token-id prompts in a batch, echo, logprobs 1,
// max_tokens 1 or 0; generate_until: text prompts with stop sequences; /tokenize and
// /detokenize), checked against the model's own logits from `dsv3 logits` in the same
// numerics (bf16, absorbed attention: what the server computes).
// Run: node --test tests/server/  (scripts/test.sh does, after building build/dsv3).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe } from './serve_helper.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dsv3 = process.env.DSV3_BINARY || path.join(root, 'build/dsv3');
const model = path.join(root, 'default-model');
let server, base, dir;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'dsv3-lmeval-'));
  ({ child: server, base } = await startServe(dsv3, ['--model', model, '--served-model-name', 'kjv', '--ctx-size', '512',
    '--draft', '0']));
});

after(() => {
  if (server) server.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function post(route, body) {
  const res = await fetch(base + route, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
}

// log-softmax of every row of `dsv3 logits` for these ids, in the server's numerics.
function referenceLogprobs(ids) {
  const out = path.join(dir, `l${ids.length}.safetensors`);
  execFileSync(dsv3, ['--threads', '2', 'logits', '--model', model, '--tokens', ids.join(','), '--out', out,
    '--numerics', 'bf16', '--attention', 'absorbed'], { stdio: 'ignore' });
  const buf = readFileSync(out);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString());
  const t = header.logits;
  const [T, V] = t.shape;
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 8 + n + t.data_offsets[0], buf.byteOffset + 8 + n + t.data_offsets[1]));
  const rows = [];
  for (let r = 0; r < T; ++r) {
    const row = data.subarray(r * V, (r + 1) * V);
    let mx = -Infinity;
    for (const v of row) mx = Math.max(mx, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - mx);
    rows.push(Array.from(row, (v) => v - mx - Math.log(z)));
  }
  return rows;
}

test('/tokenize and /detokenize round-trip, in vLLM\'s and llama.cpp\'s field names', async () => {
  const text = 'And God said, Let there be light: and there was light.';
  const a = await post('/tokenize', { model: 'kjv', prompt: text, add_special_tokens: false });
  assert.equal(a.count, a.tokens.length);
  assert.equal(a.max_model_len, 512);
  const b = await post('/tokenize', { content: text, add_special: false });
  assert.deepEqual(b.tokens, a.tokens);
  const c = await post('/detokenize', { model: 'kjv', tokens: a.tokens });
  assert.equal(c.prompt, text);
  assert.equal(c.content, text);
  const bad = await fetch(`${base}/detokenize`, { method: 'POST', body: JSON.stringify({ tokens: [-1] }) });
  assert.equal(bad.status, 400);
});

test('loglikelihood requests: a batch of token-id prompts, echo, logprobs 1, max_tokens 1 and 0', async () => {
  const texts = ['In the beginning God created the heaven and the earth.', 'Jesus wept.',
    'The LORD is my shepherd; I shall not want.'];
  const prompts = [];
  for (const t of texts) prompts.push((await post('/tokenize', { prompt: t })).tokens);
  const body = { model: 'kjv', prompt: prompts, temperature: 0, max_tokens: 1, logprobs: 1, seed: 1234, echo: true };
  const r = await post('/v1/completions', body);
  const zero = await post('/v1/completions', { ...body, max_tokens: 0 });
  assert.equal(r.choices.length, prompts.length);
  for (let i = 0; i < prompts.length; ++i) {
    const lp = r.choices[i].logprobs;
    const ids = prompts[i];
    // The prompt, then the generated token, unless it was the end of sequence (a chat-tuned
    // model ends a verse there), which no choice reports as text or logprobs.
    const generated = r.choices[i].finish_reason === 'length' ? 1 : 0;
    if (!generated) assert.equal(r.choices[i].finish_reason, 'stop');
    assert.equal(lp.token_logprobs.length, ids.length + generated);
    assert.equal(lp.token_logprobs[0], null);
    assert.equal(lp.top_logprobs[0], null);
    assert.equal(lp.tokens.length, lp.token_logprobs.length);
    assert.equal(lp.text_offset.length, lp.token_logprobs.length);
    // max_tokens 0: the same prompt part, nothing generated.
    const z = zero.choices[i].logprobs;
    assert.equal(z.token_logprobs.length, ids.length);
    assert.deepEqual(z.token_logprobs, lp.token_logprobs.slice(0, ids.length));
    assert.equal(zero.choices[i].text, r.choices[i].text.slice(0, zero.choices[i].text.length));
    // Against the model's logits.
    const ref = referenceLogprobs(ids);
    for (let t = 1; t < ids.length; ++t) {
      assert.ok(Math.abs(lp.token_logprobs[t] - ref[t - 1][ids[t]]) < 1e-4, `prompt ${i} token ${t}`);
      // The harness's greedy check: the token equals the best entry of its top_logprobs.
      const top = lp.top_logprobs[t];
      const best = Object.keys(top).reduce((a, b) => (top[a] >= top[b] ? a : b));
      let argmax = 0;
      for (let v = 1; v < ref[t - 1].length; ++v) if (ref[t - 1][v] > ref[t - 1][argmax]) argmax = v;
      assert.equal(best === lp.tokens[t], argmax === ids[t], `prompt ${i} token ${t}: greedy`);
    }
  }
});

test('generate_until requests: text prompts, stop sequences, greedy', async () => {
  const body = { model: 'kjv', prompt: ['And God said,', 'Blessed are the'], max_tokens: 48, temperature: 0,
    stop: ['\n', '.'], seed: 1234 };
  const r = await post('/v1/completions', body);
  assert.equal(r.choices.length, 2);
  for (const c of r.choices) {
    assert.ok(!c.text.includes('\n') && !c.text.includes('.'));
    assert.ok(['stop', 'length'].includes(c.finish_reason));
  }
  const again = await post('/v1/completions', body);
  assert.deepEqual(again.choices.map((c) => c.text), r.choices.map((c) => c.text));
});

test('dsv3 eval --url scores the server as dsv3 eval scores the model in-process', async () => {
  // The KJV tasks from the held-out books (scripts/kjv/make_eval_tasks.py).
  const raw = path.join(dir, 'raw.txt');
  execFileSync('sh', ['-c', `bible 'Gen1:1-Rev22:21' > ${raw}`]);
  execFileSync('python3', [path.join(root, 'scripts/kjv/extract_kjv.py'), raw, path.join(dir, 'train.txt'),
    path.join(dir, 'eval.txt'), '--eval-books', 'Philippians,Colossians,Titus,Philemon,Jude'], { stdio: 'ignore' });
  execFileSync('python3', [path.join(root, 'scripts/kjv/make_eval_tasks.py'), path.join(dir, 'eval.txt'),
    path.join(dir, 'tasks')], { stdio: 'ignore' });
  const tasks = ['--perplexity', path.join(dir, 'eval.txt'), '--window', '257', '--max-windows', '8',
    '--choice', path.join(dir, 'tasks/cloze.jsonl'), '--generation', path.join(dir, 'tasks/continuation.jsonl'),
    '--max-tokens', '8'];
  const run = async (where, out) => {
    await new Promise((resolve, reject) => {
      const p = spawn(dsv3, ['--threads', '2', 'eval', ...where, ...tasks, '--json', out], { stdio: 'ignore' });
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`dsv3 eval exited with ${code}`))));
    });
    return JSON.parse(readFileSync(out, 'utf8'));
  };
  const remote = await run(['--url', base], path.join(dir, 'remote.json'));
  const local = await run(['--model', model], path.join(dir, 'local.json'));
  assert.equal(remote.tasks.length, 3);
  for (let i = 0; i < 3; ++i) {
    assert.equal(remote.tasks[i].items, local.tasks[i].items);
    for (const [k, v] of Object.entries(local.tasks[i].metrics))
      assert.ok(Math.abs(remote.tasks[i].metrics[k] - v) <= 1e-4, `${local.tasks[i].task} ${k}: ${remote.tasks[i].metrics[k]} vs ${v}`);
  }
  assert.ok(local.tasks[1].metrics.acc > 0.45);
});
