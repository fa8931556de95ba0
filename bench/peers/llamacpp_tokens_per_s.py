#!/usr/bin/env python3
# llama.cpp's side of bench/generation_bench.cc, through llama-cpp-python: pp512 (one eval
# of 512 ids, n_batch = n_ubatch = 512) and tg128 (128 one-token evals after an 8-token
# prompt) on the same GGUF, at the given thread counts. Prints one JSON line per case.
"""Usage: build/venv/bin/python bench/peers/llamacpp_tokens_per_s.py MODEL.gguf [--threads 1 2] [--reps 3]

Same token ids as nibble's benchmark: id(i) = (i*997 + 13) % n_vocab. llama.cpp runs with
its defaults otherwise (f16 K/V cache, flash attention as it decides, mmap). Each case is
warmed up once, then timed `reps` times; the best repetition is reported (and all of them).
The Python wrapper adds per-eval overhead (list bookkeeping, one logits-row copy): about
tens of microseconds, under 1 % of a SmolLM2 token.
"""
import argparse
import json
import sys
import time

import llama_cpp

PP = 512        # llama-bench pp512
TG = 128        # llama-bench tg128
TG_PREFIX = 8   # the short prompt before tg, as in nibble's BM_GenerationTg128


def bench_token(i, n_vocab):
    return (i * 997 + 13) % n_vocab


def time_pp(llm, ids):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    return PP / (time.perf_counter() - t0)


def time_tg(llm, n_vocab):
    llm.reset()
    llm.eval([bench_token(i, n_vocab) for i in range(TG_PREFIX)])
    t0 = time.perf_counter()
    for i in range(TG):
        llm.eval([bench_token(TG_PREFIX + i, n_vocab)])
    return TG / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    for threads in args.threads:
        llm = llama_cpp.Llama(model_path=args.model, n_ctx=PP + TG, n_batch=PP, n_ubatch=PP, n_threads=threads,
                              n_threads_batch=threads, logits_all=False, verbose=False)
        n_vocab = llm.n_vocab()
        ids = [bench_token(i, n_vocab) for i in range(PP)]
        time_pp(llm, ids)  # warm-up: pages of the map, compute buffers
        time_tg(llm, n_vocab)
        pp = [time_pp(llm, ids) for _ in range(args.reps)]
        tg = [time_tg(llm, n_vocab) for _ in range(args.reps)]
        print(json.dumps({"engine": "llama.cpp", "llama_cpp_python": llama_cpp.__version__, "model": args.model,
                          "threads": threads, "pp512_tok_s": max(pp), "tg128_tok_s": max(tg),
                          "pp512_all": pp, "tg128_all": tg}), flush=True)
        del llm
    return 0


if __name__ == "__main__":
    sys.exit(main())
