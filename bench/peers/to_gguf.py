#!/usr/bin/env python3
"""Converts a dsv3/Hugging Face DeepSeek-V3 folder to GGUF with llama.cpp's own converter, for
the peer comparison in bench/peers/llama_cpp.sh.

llama.cpp's converter reads the vocabulary through `transformers.AutoTokenizer`, which Debian
does not package and PyPI is not reachable from here. This wrapper replaces only that step: it
reads tokenizer.json itself and hands the converter the same token list, token types and
pre-tokenizer name ("deepseek-v3") that AutoTokenizer would give it for DeepSeek-V3. Everything
else (tensor names, MLA's kv_b split, expert merging, metadata) is llama.cpp's code.

usage: to_gguf.py LLAMA_CPP_DIR MODEL_DIR OUT.gguf
"""
import json
import sys
import types
from pathlib import Path

llama_dir, model_dir, out = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
sys.path.insert(0, str(llama_dir))
sys.path.insert(1, str(llama_dir / "gguf-py"))


class _NoTransformers:
    @staticmethod
    def from_pretrained(*args, **kwargs):
        raise RuntimeError("transformers is not installed")


# The converter imports transformers at the top and falls back to reading config.json itself
# when AutoConfig fails: a module whose loaders fail takes that path.
sys.modules["transformers"] = types.SimpleNamespace(AutoConfig=_NoTransformers, AutoTokenizer=_NoTransformers)

# Debian's torch (1.13) predates these dtypes; the converter only names them in its type
# tables, and a BF16 checkpoint holds none of them, so unique placeholders keep the tables
# valid without pretending support.
import torch  # noqa: E402
for _name in ("float8_e4m3fn", "float8_e5m2", "float8_e8m0fnu", "uint16", "uint32", "uint64"):
    if not hasattr(torch, _name):
        setattr(torch, _name, f"<torch.{_name} is not in this torch>")
import gguf  # noqa: E402
import convert_hf_to_gguf  # noqa: E402
from conversion import base  # noqa: E402


def vocab_from_tokenizer_json(self):
    tok = json.loads((self.dir_model / "tokenizer.json").read_text())
    vocab = dict(tok["model"]["vocab"])
    added = {t["content"]: t for t in tok.get("added_tokens", [])}
    for content, t in added.items():
        vocab[content] = t["id"]
    size = self.hparams.get("vocab_size", len(vocab))
    by_id = {i: s for s, i in vocab.items()}
    tokens, kinds = [], []
    for i in range(size):
        s = by_id.get(i)
        if s is None:
            tokens.append(f"[PAD{i}]")
            kinds.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(s)
            special = s in added and (added[s].get("special") or self.does_token_look_special(s))
            user = s in added and not special
            kinds.append(gguf.TokenType.CONTROL if special else
                         gguf.TokenType.USER_DEFINED if user else gguf.TokenType.NORMAL)
    return tokens, kinds, "deepseek-v3"


base.TextModel.get_vocab_base = vocab_from_tokenizer_json
sys.argv = ["convert_hf_to_gguf.py", str(model_dir), "--outfile", out, "--outtype", "bf16"]
convert_hf_to_gguf.main()
