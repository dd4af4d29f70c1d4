// Load test for `dsv3 serve`: aggregate decode throughput of C concurrent streams against
// one stream, time to first token and latency percentiles, and what prefix reuse does to a
// long shared system prompt. Bounded: every request has max_tokens and the run a fixed count.
//
//   node bench/serve_load.mjs --url http://127.0.0.1:8080 [--key KEY] [--concurrency 8]
//        [--requests 16] [--max-tokens 64] [--system-tokens 2000] [--json]
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    url: { type: 'string', default: 'http://127.0.0.1:8080' }, key: { type: 'string', default: '' },
    concurrency: { type: 'string', default: '8' }, requests: { type: 'string', default: '16' },
    'max-tokens': { type: 'string', default: '64' }, 'system-tokens': { type: 'string', default: '2000' },
    json: { type: 'boolean', default: false },
  },
});
const C = Number(a.concurrency), R = Number(a.requests), N = Number(a['max-tokens']);
const headers = { 'Content-Type': 'application/json', ...(a.key ? { Authorization: `Bearer ${a.key}` } : {}) };
const model = (await (await fetch(`${a.url}/v1/models`, { headers })).json()).data[0].id;

// One streamed chat request; returns time to first token, total time and tokens generated.
async function one(messages, maxTokens = N) {
  const t0 = performance.now();
  const res = await fetch(`${a.url}/v1/chat/completions`, {
    method: 'POST', headers,
    body: JSON.stringify({ model, messages, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true,
      stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let ttft = null, usage = null, buf = '';
  const dec = new TextDecoder();
  for await (const part of res.body) {
    buf += dec.decode(part, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const c = JSON.parse(line.slice(6));
      if (c.usage) usage = c.usage;
      if (ttft === null && c.choices?.some((x) => x.delta?.content)) ttft = performance.now() - t0;
    }
  }
  return { ttft: ttft ?? performance.now() - t0, total: performance.now() - t0, tokens: usage?.completion_tokens ?? 0, usage };
}

const pct = (xs, p) => { const s = [...xs].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]; };
const user = (i) => [{ role: 'user', content: `Request ${i}: write a long story about the number ${i * 7919 % 1000}.` }];

// Single stream: decode tokens/s of one sequence alone.
await one(user(-1), 4);  // warm-up
const solo = await one(user(0));
const soloTps = solo.tokens / ((solo.total - solo.ttft) / 1000);

// C concurrent clients sharing R requests.
let next = 1;
const results = [];
const t0 = performance.now();
await Promise.all(Array.from({ length: C }, async () => {
  while (next <= R) results.push(await one(user(next++)));
}));
const wall = (performance.now() - t0) / 1000;
const tokens = results.reduce((s, r) => s + r.tokens, 0);

// Prefix reuse: the same long system prompt twice (different questions).
const system = Array.from({ length: Number(a['system-tokens']) }, (_, i) => ['law', 'order', 'river', 'stone'][i % 4]).join(' ');
const first = await one([{ role: 'system', content: system }, { role: 'user', content: 'First question?' }], 1);
const second = await one([{ role: 'system', content: system }, { role: 'user', content: 'Second question?' }], 1);

const out = {
  model, concurrency: C, requests: R, max_tokens: N,
  single_stream_decode_tokens_per_s: soloTps,
  aggregate_tokens_per_s: tokens / wall,
  aggregate_over_single: tokens / wall / soloTps,
  ttft_ms: { p50: pct(results.map((r) => r.ttft), 50), p90: pct(results.map((r) => r.ttft), 90), p99: pct(results.map((r) => r.ttft), 99) },
  latency_ms: { p50: pct(results.map((r) => r.total), 50), p90: pct(results.map((r) => r.total), 90), p99: pct(results.map((r) => r.total), 99) },
  prefix: { prompt_tokens: first.usage?.prompt_tokens, first_ttft_ms: first.ttft, second_ttft_ms: second.ttft,
    second_cached_tokens: second.usage?.prompt_tokens_details?.cached_tokens, speedup: first.ttft / second.ttft },
};
if (a.json) {
  console.log(JSON.stringify(out));
} else {
  const f = (x) => x.toFixed(1);
  console.log(`model ${model}: ${R} requests, ${C} concurrent, ${N} tokens each`);
  console.log(`single stream      ${f(soloTps)} tok/s`);
  console.log(`${C} streams total   ${f(out.aggregate_tokens_per_s)} tok/s  (${out.aggregate_over_single.toFixed(2)}x one stream)`);
  console.log(`time to first token p50 ${f(out.ttft_ms.p50)} ms  p90 ${f(out.ttft_ms.p90)} ms  p99 ${f(out.ttft_ms.p99)} ms`);
  console.log(`request latency     p50 ${f(out.latency_ms.p50)} ms  p90 ${f(out.latency_ms.p90)} ms  p99 ${f(out.latency_ms.p99)} ms`);
  console.log(`prefix reuse: ${out.prefix.prompt_tokens}-token prompt, first ${f(first.ttft)} ms, second ${f(second.ttft)} ms ` +
    `(${out.prefix.second_cached_tokens} cached, ${out.prefix.speedup.toFixed(1)}x sooner)`);
}
