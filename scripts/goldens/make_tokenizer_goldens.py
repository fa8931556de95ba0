#!/usr/bin/env python3
"""Tokenizer goldens from Hugging Face `tokenizers` (the oracle) for src/tokenizer/hf_tokenizer*_test.cc.

Writes tests/golden/tokenizer/:
  tok512_legacy.json / tok512_metaspace.json  tok512.model converted by transformers'
      SentencePieceExtractor into HF BPE+byte_fallback tokenizer.json files, in the two
      forms real checkpoints use: Llama 2 / TinyLlama / Mistral v0.1 (normalizer
      Prepend + Replace) and newer Llama / Mistral v0.3 (Metaspace, prepend_scheme first).
  llama3_style.json / smollm2_style.json  small byte-level BPE files trained here with
      `tokenizers` on WikiText-2, with the real pre-tokenizers of Llama 3 (Split regex +
      ByteLevel(use_regex=False), ignore_merges) and SmolLM2 (Digits + ByteLevel).
  ids_*.json  {"tokenizer", "texts", "ids", "decoded"}: encode(add_special_tokens=False)
      and decode(skip_special_tokens=True) per text, plus "ids_special" with BOS/EOS.
  ids_tok512_metaspace_{always,never}.json  the same for tok512_metaspace.json with its
      "pre_tokenizer" and "decoder" replaced by the ones recorded in the file
      (prepend_scheme "always"; "never" without the Strip decoder, as transformers'
      converter writes it), on the space-prefix edge cases.
  tok512_unigram.model  tok512.model with trainer_spec.model_type = UNIGRAM (rejected).
  pretok_llama3.json / pretok_smollm2.json  {"pattern", "texts", "splits"}: the
      pre_tokenize_str split strings (byte-level alphabet) per text.
Run: build/venv/bin/python scripts/goldens/make_tokenizer_goldens.py
(needs `pip install sentencepiece protobuf` besides tokenizers and transformers).
"""
import json
import os
import platform
import sys

import google.protobuf
import sentencepiece
import tokenizers
import transformers
from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, Regex
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer
from transformers import LlamaTokenizer
from transformers.convert_slow_tokenizer import SentencePieceExtractor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "tests", "golden", "tokenizer")
TOK512_MODEL = os.path.join(SHARED, "llama2c-stories260K", "tok512.model")
GPT2_JSON = os.path.join(SHARED, "peft-lora-gpt2", "tokenizer.json")
WIKI = os.path.join(SHARED, "text-wikitext2-raw", "wiki.test.raw")
STORIES = os.path.join(SHARED, "text-tinystories", "tinystories_val.txt")

# The Split regex of Meta-Llama-3's tokenizer.json (and Qwen2's with \p{N} alone).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Hand-picked edge cases: scripts, emoji sequences, digits of every Unicode kind,
# whitespace of every kind, contractions in both cases, punctuation runs.
UNICODE_LINES = [
    "Hello world", "Hello, world!", " leading space", "trailing space ", "  two leading", "a  b   c    d",
    "tab\tseparated\tvalues", "\ttab first", "line one\nline two", "para\n\n\nthree newlines", "crlf\r\nline",
    "\r\n\r\n", "   ", "\n", "mixed \t\n \r\n ws", "end with newline\n", "nbsp\u00a0here", "ideographic\u3000space",
    "line\u2028separator", "zero\u200bwidth", "em\u2003space",
    "I'm here, you're there, we've been, they'll go, he'd say, it's fine, don't",
    "I'M LOUD, YOU'RE LOUD, WE'VE, THEY'LL, HE'D, IT'S, DON'T", "curly \u2019s and \u2018quotes\u2019 \u201cdouble\u201d",
    "'s 'S 't 're 've 'm 'll 'd", "rock 'n' roll", "o'clock", "''double apostrophe''",
    "1 12 123 1234 12345 123456 1234567", "3.14159 2,718 1e-10 0x1F", "phone: +1 (555) 123-4567",
    "year 2024, 20245 items", "\u0661\u0662\u0663\u0664 arabic-indic digits", "\uff11\uff12\uff13 fullwidth digits",
    "x\u00b2 + y\u00b3 = z\u2074", "\u00bd \u00bc \u00be fractions", "\u216b roman twelve \u2167", "\u2460\u2461\u2462 circled",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe", "cafe\u0301 combining acute", "\u00c5ngstr\u00f6m \u00d8re",
    "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002\u30ab\u30bf\u30ab\u30ca",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u03ba\u03b5\u03af\u03bc\u03b5\u03bd\u03bf",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "RTL \u202eoverride\u202c mark", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01", "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0",
    "emoji \U0001f999 llama", "zwj \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
    "flag \U0001f1eb\U0001f1f7 \U0001f1ef\U0001f1f5", "skin \U0001f44d\U0001f3fd tone", "\u2764\ufe0f heart vs \u2764 heart",
    "math \u2200x\u2208\u211d: x\u00b2\u22650", "arrows \u2192 \u21d2 \u27f6", "box \u2500\u2502\u250c\u2510",
    "!!! ??? ... --- *** ###", "a.b,c;d:e!f?g", "(parens) [brackets] {braces} <angles>", "\"quoted\" and 'single'",
    "C++ and C# and F#", "def f(x):\n    return x**2  # square", "if (a && b || !c) { x += 1; }",
    "https://example.com/path?q=1&r=2#frag", "user@example.com", "snake_case camelCase PascalCase kebab-case",
    "ALLCAPS lowercase MiXeD", "\u00bfQu\u00e9? \u00a1S\u00ed!", "\u2581marker\u2581in\u2581text", "<0x41> looks like a byte",
    "\u0120G-dot \u010aC-dot", "BOM\ufeffinside", "\U0001d400\U0001d401 math bold", "\U00020000 CJK ext B",
]

# Where tokenizers' Metaspace prefix differs from llama.cpp's: text that starts with a
# space or "▁", text around special tokens, empty and all-space text.
SPACE_PREFIX_LINES = [
    "", " ", "   ", "\u2581", "\u2581\u2581 x", " \u2581x", "\u2581 x", " x", "x ", "\tx", "\nx",
    "<s>", "<s>x", "<s> x", "<s>\u2581x", "<s><s>x", "x<s>", "x<s>y", "x<s> y", "x</s>y z", "</s> </s>",
    "a <s>b</s> c", "<unk>x",
]


def read_lines(path, count, min_len, max_len, skip=0):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if min_len <= len(line) <= max_len:
                if skip > 0:
                    skip -= 1
                    continue
                out.append(line)
                if len(out) == count:
                    break
    return out


def dump(name, obj):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def ids_golden(name, tok, texts, source):
    tok.no_truncation()
    tok.no_padding()
    dump(name, {
        "tokenizer": source,
        "texts": texts,
        "ids": [tok.encode(t, add_special_tokens=False).ids for t in texts],
        "ids_special": [tok.encode(t, add_special_tokens=True).ids for t in texts],
        "decoded": [tok.decode(tok.encode(t, add_special_tokens=False).ids, skip_special_tokens=True) for t in texts],
    })


def tok512_files():
    # transformers 5's SentencePieceExtractor gives every two-piece split of each
    # piece as a merge, ordered by piece id (the SentencePiece score order).
    kw = SentencePieceExtractor(TOK512_MODEL).extract(BPE)
    out = {}
    for form in ("legacy", "metaspace"):
        t = LlamaTokenizer(vocab=kw["vocab"], merges=kw["merges"], legacy=False).backend_tokenizer
        if form == "legacy":
            # Llama 2 / TinyLlama / Mistral v0.1 tokenizer.json: no pre-tokenizer, the
            # space marker comes from the normalizer.
            from tokenizers import normalizers
            t.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
            t.pre_tokenizer = None
        t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                         special_tokens=[("<s>", 1)])
        # Real Llama 2 / Mistral files name <unk> in the model, as SentencePiece does.
        d = json.loads(t.to_str())
        d["model"]["unk_token"] = "<unk>"
        path = os.path.join(OUT, f"tok512_{form}.json")
        Tokenizer.from_str(json.dumps(d)).save(path)
        out[form] = Tokenizer.from_file(path)
    return out


def train_byte_level(pre, ignore_merges, specials, user_tokens, template, corpus):
    t = Tokenizer(BPE())
    t.pre_tokenizer = pre
    t.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(vocab_size=700, min_frequency=2, show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t.train_from_iterator(corpus, trainer)
    t.add_special_tokens(specials)
    t.add_tokens(user_tokens)
    t.post_processor = template
    d = json.loads(t.to_str())
    d["model"]["ignore_merges"] = ignore_merges
    return Tokenizer.from_str(json.dumps(d))


def pre_tokenizer_json(pre):
    t = Tokenizer(BPE())
    t.pre_tokenizer = pre
    return json.loads(t.to_str())["pre_tokenizer"]


def main():
    os.makedirs(OUT, exist_ok=True)
    wiki = read_lines(WIKI, 70, 20, 300)
    wiki_pretok = read_lines(WIKI, 80, 5, 250, skip=70)
    stories = read_lines(STORIES, 30, 10, 200)
    train_corpus = read_lines(WIKI, 3000, 1, 2000, skip=200)

    # GPT-2: the shared tokenizer.json is read by the C++ test itself.
    gpt2 = Tokenizer.from_file(GPT2_JSON)
    ids_golden("ids_gpt2.json", gpt2, wiki[:40] + UNICODE_LINES + ["<|endoftext|>between<|endoftext|>"],
               "../shared/data/peft-lora-gpt2/tokenizer.json")

    tok512 = tok512_files()
    spm_texts = stories + UNICODE_LINES + ["<s>inline control</s> text", "</s>"] + SPACE_PREFIX_LINES
    ids_golden("ids_tok512_legacy.json", tok512["legacy"], spm_texts, "tok512_legacy.json")
    ids_golden("ids_tok512_metaspace.json", tok512["metaspace"], spm_texts, "tok512_metaspace.json")
    for scheme in ("always", "never"):
        d = json.loads(tok512["metaspace"].to_str())
        d["pre_tokenizer"]["prepend_scheme"] = scheme
        if scheme == "never":
            d["decoder"]["decoders"] = [x for x in d["decoder"]["decoders"] if x["type"] != "Strip"]
        name = f"ids_tok512_metaspace_{scheme}.json"
        ids_golden(name, Tokenizer.from_str(json.dumps(d)), SPACE_PREFIX_LINES + stories[:3] + UNICODE_LINES[:8],
                   "tok512_metaspace.json")
        g = json.load(open(os.path.join(OUT, name), encoding="utf-8"))
        g.update(pre_tokenizer=d["pre_tokenizer"], decoder=d["decoder"])
        dump(name, g)

    llama3_pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    smollm2_pre = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])

    llama3 = train_byte_level(
        llama3_pre, True, ["<|begin_of_text|>", "<|end_of_text|>"], ["<mark>"],
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", 700)]), train_corpus)
    llama3.save(os.path.join(OUT, "llama3_style.json"))
    smollm2 = train_byte_level(smollm2_pre, False, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], [],
                               processors.ByteLevel(trim_offsets=False), train_corpus)
    smollm2.save(os.path.join(OUT, "smollm2_style.json"))
    byte_texts = wiki[40:] + UNICODE_LINES + ["<|begin_of_text|>x<mark>y<|im_start|>z"]
    ids_golden("ids_llama3_style.json", llama3, byte_texts, "llama3_style.json")
    ids_golden("ids_smollm2_style.json", smollm2, byte_texts, "smollm2_style.json")

    pretok_texts = UNICODE_LINES + wiki_pretok + stories + read_lines(STORIES, 8, 300, 700)
    for name, pre in (("llama3", llama3_pre), ("smollm2", smollm2_pre)):
        dump(f"pretok_{name}.json", {
            "pre_tokenizer": pre_tokenizer_json(pre),
            "texts": pretok_texts,
            "splits": [[s for s, _ in pre.pre_tokenize_str(t)] for t in pretok_texts],
        })

    # tok512.model relabelled as a unigram model: the loader must refuse it.
    from transformers.convert_slow_tokenizer import import_protobuf
    model_pb2 = import_protobuf()
    proto = model_pb2.ModelProto()
    with open(TOK512_MODEL, "rb") as f:
        proto.ParseFromString(f.read())
    proto.trainer_spec.model_type = model_pb2.TrainerSpec.UNIGRAM
    with open(os.path.join(OUT, "tok512_unigram.model"), "wb") as f:
        f.write(proto.SerializeToString())

    with open(os.path.join(OUT, "VERSIONS.txt"), "w") as f:
        f.write(f"tokenizers {tokenizers.__version__}\n")
        f.write(f"transformers {transformers.__version__}\n")
        f.write(f"sentencepiece {sentencepiece.__version__}\n")
        f.write(f"protobuf {google.protobuf.__version__}\n")
        f.write(f"python {platform.python_version()}\n")
        f.write("inputs ../shared/data/llama2c-stories260K/tok512.model, ../shared/data/peft-lora-gpt2/tokenizer.json,\n")
        f.write("       text-wikitext2-raw/wiki.test.raw, text-tinystories/tinystories_val.txt\n")
        f.write("command: build/venv/bin/python scripts/goldens/make_tokenizer_goldens.py\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
