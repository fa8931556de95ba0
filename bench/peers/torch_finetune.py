#!/usr/bin/env python3
"""PyTorch (+ PEFT) fine-tuning throughput and peak memory on CPU, the peer of
`nibble finetune`: the same HF model directory, the same text packed into the same
windows (run_clm's group_texts), batch size, sequence length, LoRA settings and thread
count. Prints one JSON line: tokens/s over the timed steps and the peak RSS.

    python bench/peers/torch_finetune.py --model DIR --text FILE --method lora|full|qlora \
        --seq-len 256 --batch-size 1 --steps 8 --warmup 2 --threads 2 [--r 16 --lora-alpha 32] \
        [--compute-dtype float32|bfloat16]

qlora loads the model with transformers' BitsAndBytesConfig(load_in_4bit, nf4, double quant,
bnb_4bit_compute_dtype) on CPU (bitsandbytes >= 0.50) before PEFT's LoRA.
"""
import argparse
import json
import resource
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--method", choices=["lora", "full", "qlora"], default="lora")
    ap.add_argument("--compute-dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--lora-alpha", type=float, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import peft
    import transformers
    from transformers import AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(a.model)
    quant = {}
    if a.method == "qlora":
        from transformers import BitsAndBytesConfig
        quant = {"quantization_config": BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=getattr(torch, a.compute_dtype)), "device_map": "cpu"}
    model = LlamaForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32, attn_implementation="sdpa", **quant)
    if a.method in ("lora", "qlora"):
        cfg = peft.LoraConfig(r=a.r, lora_alpha=a.lora_alpha, lora_dropout=0.0, target_modules="all-linear",
                              task_type="CAUSAL_LM")
        model = peft.get_peft_model(model, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    ids = tok(open(a.text, encoding="utf-8").read())["input_ids"]
    n = a.seq_len * a.batch_size
    t_timed, tokens = 0.0, 0
    for step in range(a.warmup + a.steps):
        chunk = torch.tensor(ids[step * n:(step + 1) * n]).reshape(a.batch_size, a.seq_len)
        t0 = time.perf_counter()
        loss = model(input_ids=chunk, labels=chunk).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            t_timed += dt
            tokens += n
    print(json.dumps({
        "peer": {"lora": "pytorch+peft", "qlora": "pytorch+peft+bitsandbytes"}.get(a.method, "pytorch"),
        "method": a.method, "compute_dtype": a.compute_dtype if a.method == "qlora" else "float32",
        "tokens_per_s": tokens / t_timed, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "threads": a.threads, "seq_len": a.seq_len, "batch_size": a.batch_size, "steps": a.steps,
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "trainable": sum(p.numel() for p in params), "last_loss": float(loss)}))


if __name__ == "__main__":
    main()
