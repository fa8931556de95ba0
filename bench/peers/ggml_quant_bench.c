// llama.cpp's side of nibble's 4-bit benchmarks, through ggml's CPU backend, on one
// 4096 x 14336 weight (N = 4096 out, K = 14336 in; ggml ne0 = 14336, ne1 = 4096):
//   gemv:     y = W·x, one f32 x, ggml_mul_mat in a graph run by the CPU backend at 1 and 2
//             threads; COPIES copies of W (each >= 33 MB for 4-bit) used in turn so that W
//             comes from DRAM, not from the 32 MiB L3. Two weight layouts: "plain" (a CPU
//             buffer: ggml's vec_dot / llamafile path) and "repack" (the CPU_REPACK extra
//             buffer type that llama.cpp puts weights in by default: Q4_0 -> q4_0_8x8,
//             IQ4_NL -> iq4_nl_8x8 on AVX2/AVX-512; none for Q8_0 on x86).
//   to_float: ggml_get_type_traits(type)->to_float over the whole tensor, one thread.
//   quantize: ggml_quantize_chunk from f32, one thread and two (rows split in halves).
// Bandwidth probe as bench/probes.cc: 1 GiB of u64 written first (every page touched), then
// summed with 4 independent 512-bit accumulators, each thread its contiguous share,
// OpenMP, best of 5 passes; 1 and 2 threads. Weights are N(0, 0.02), x is N(0, 1); the
// copies hold the same bytes (one quantization), at different addresses.
// Every timing also reports foreign_cores: how many cores other processes kept busy meanwhile
// (/proc/stat minus this process); on a 2-core machine 2-thread figures are only meaningful
// near 0 (ggml's threads spin at barriers, so a descheduled thread costs whole time slices).
// Times are medians (GEMV: of --reps calls). Prints one JSON object on stdout. Usage: ggml_quant_bench [--reps N] [--copies N]
//   [--llama-cpp-commit HASH] [--source TEXT]
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"

#define N_OUT 4096
#define K_IN 14336
#define MAX_COPIES 16
#define MAX_REPS 1000

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// CPU time of other processes, from /proc/stat (all CPUs' busy jiffies) minus our own.
struct cpu_snap {
  double wall, busy, own;
};
static struct cpu_snap cpu_snap(void) {
  struct cpu_snap c = {now_s(), 0, 0};
  unsigned long long v[10] = {0};
  FILE* f = fopen("/proc/stat", "r");
  if (f) {
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
               &v[7]) == 8)
      c.busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / 100.0;  // USER_HZ = 100
    fclose(f);
  }
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  c.own = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
  return c;
}
// Average number of cores other processes kept busy between a and b.
static double foreign_cores(struct cpu_snap a, struct cpu_snap b) {
  const double f = (b.busy - a.busy) - (b.own - a.own);
  return f > 0 ? f / (b.wall - a.wall) : 0.0;
}

static int cmp_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median(double* v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double minimum(const double* v, int n) {
  double m = v[0];
  for (int i = 1; i < n; ++i) m = v[i] < m ? v[i] : m;
  return m;
}

static void* xmalloc(size_t n) {
  void* p = NULL;
  if (posix_memalign(&p, 64, n) != 0) {
    fprintf(stderr, "out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return p;
}

// ---- read-bandwidth probe (mirrors nibble::bench::MeasureReadBandwidth) ----

static uint64_t sum_u64(const uint64_t* p, size_t n) {
#if defined(__AVX512F__)
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm512_add_epi64(a0, _mm512_loadu_si512((const void*)(p + i)));
    a1 = _mm512_add_epi64(a1, _mm512_loadu_si512((const void*)(p + i + 8)));
    a2 = _mm512_add_epi64(a2, _mm512_loadu_si512((const void*)(p + i + 16)));
    a3 = _mm512_add_epi64(a3, _mm512_loadu_si512((const void*)(p + i + 24)));
  }
  return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
#else
  typedef uint64_t v4u64 __attribute__((vector_size(32)));
  v4u64 a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0, t;
  for (size_t i = 0; i + 16 <= n; i += 16) {
    memcpy(&t, p + i, 32), a0 += t;
    memcpy(&t, p + i + 4, 32), a1 += t;
    memcpy(&t, p + i + 8, 32), a2 += t;
    memcpy(&t, p + i + 12, 32), a3 += t;
  }
  t = a0 + a1 + a2 + a3;
  return t[0] + t[1] + t[2] + t[3];
#endif
}

static volatile uint64_t g_sink;

// Best bytes/s of `passes` passes; the buffer is written first (no shared zero page).
static double measure_read_bandwidth(int threads, size_t num_bytes, int passes, uint64_t* buf) {
  const size_t n = num_bytes / sizeof(uint64_t);
  const size_t per_thread = n / (size_t)threads / 64 * 64;
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    uint64_t total = 0;
    const double t0 = now_s();
#pragma omp parallel for num_threads(threads) reduction(+ : total)
    for (int t = 0; t < threads; ++t) total += sum_u64(buf + (size_t)t * per_thread, per_thread);
    const double s = now_s() - t0;
    g_sink = g_sink + total;
    const double bw = (double)(per_thread * (size_t)threads * sizeof(uint64_t)) / s;
    if (bw > best) best = bw;
  }
  return best;
}

// ---- inputs ----

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double next_unit(void) {  // xorshift64*, (0, 1)
  g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
  return ((double)((g_rng * 2685821657736338717ull) >> 11) + 0.5) * 0x1p-53;
}
static void fill_normal(float* v, size_t n, double sigma) {  // Box-Muller
  for (size_t i = 0; i < n; i += 2) {
    const double r = sigma * sqrt(-2.0 * log(next_unit())), a = 6.283185307179586 * next_unit();
    v[i] = (float)(r * cos(a));
    if (i + 1 < n) v[i + 1] = (float)(r * sin(a));
  }
}

// ---- quantize with two threads ----

struct quant_job {
  enum ggml_type type;
  const float* src;
  void* dst;
  int64_t row0, nrows;
};
static void* quant_worker(void* arg) {
  struct quant_job* j = (struct quant_job*)arg;
  ggml_quantize_chunk(j->type, j->src, j->dst, j->row0 * K_IN, j->nrows, K_IN, NULL);
  return NULL;
}
static void quantize_threads(enum ggml_type type, const float* src, void* dst, int threads) {
  if (threads == 1) {
    ggml_quantize_chunk(type, src, dst, 0, N_OUT, K_IN, NULL);
    return;
  }
  pthread_t th[2];
  struct quant_job jobs[2];
  for (int t = 0; t < 2; ++t) {
    jobs[t] = (struct quant_job){type, src, dst, t * (N_OUT / 2), N_OUT / 2};
    pthread_create(&th[t], NULL, quant_worker, &jobs[t]);
  }
  for (int t = 0; t < 2; ++t) pthread_join(th[t], NULL);
}

// ---- GEMV through the CPU backend ----

struct gemv_result {
  int ok, repacked;
  double median_s[3], min_s[3];
  double max_abs_err, max_abs_ref;
  double foreign[3];
};

static ggml_backend_buffer_type_t repack_buft(void) {
  ggml_backend_reg_t reg = ggml_backend_cpu_reg();
  ggml_backend_dev_get_extra_bufts_t get =
      (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts");
  if (!get) return NULL;
  for (ggml_backend_buffer_type_t* b = get(ggml_backend_reg_dev_get(reg, 0)); b && *b; ++b)
    if (strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") == 0) return *b;
  return NULL;
}

static void run_gemv(ggml_backend_t backend, ggml_backend_buffer_type_t wbuft, enum ggml_type type, const void* wq,
                     const float* x, const double* yref, int copies, int reps, struct gemv_result* r) {
  memset(r, 0, sizeof(*r));
  struct ggml_init_params wp = {ggml_tensor_overhead() * (size_t)copies + 1024, NULL, true};
  struct ggml_context* wctx = ggml_init(wp);
  struct ggml_tensor* w[MAX_COPIES];
  for (int c = 0; c < copies; ++c) w[c] = ggml_new_tensor_2d(wctx, type, K_IN, N_OUT);
  ggml_backend_buffer_t wbuf = ggml_backend_alloc_ctx_tensors_from_buft(wctx, wbuft);
  if (!wbuf) {
    ggml_free(wctx);
    return;
  }
  for (int c = 0; c < copies; ++c) ggml_backend_tensor_set(w[c], wq, 0, ggml_nbytes(w[c]));
  r->repacked = w[0]->extra != NULL;

  const size_t graph_bytes = ggml_graph_overhead() * (size_t)copies;
  struct ggml_init_params cp = {ggml_tensor_overhead() * (size_t)(2 * copies + 4) + graph_bytes + 4096, NULL, true};
  struct ggml_context* cctx = ggml_init(cp);
  struct ggml_tensor* xt = ggml_new_tensor_1d(cctx, GGML_TYPE_F32, K_IN);
  struct ggml_tensor* y[MAX_COPIES];
  struct ggml_cgraph* g[MAX_COPIES];
  for (int c = 0; c < copies; ++c) {
    y[c] = ggml_mul_mat(cctx, w[c], xt);
    g[c] = ggml_new_graph(cctx);
    ggml_build_forward_expand(g[c], y[c]);
  }
  ggml_backend_buffer_t cbuf = ggml_backend_alloc_ctx_tensors(cctx, backend);
  ggml_backend_tensor_set(xt, x, 0, sizeof(float) * K_IN);

  double times[MAX_REPS];
  for (int threads = 1; threads <= 2; ++threads) {
    ggml_backend_cpu_set_n_threads(backend, threads);
    for (int c = 0; c < copies; ++c) ggml_backend_graph_compute(backend, g[c]);  // warm-up
    const struct cpu_snap s0 = cpu_snap();
    for (int i = 0; i < reps; ++i) {
      const double t0 = now_s();
      ggml_backend_graph_compute(backend, g[i % copies]);
      times[i] = now_s() - t0;
    }
    r->foreign[threads] = foreign_cores(s0, cpu_snap());
    r->min_s[threads] = minimum(times, reps);
    r->median_s[threads] = median(times, reps);
  }
  float* yv = (float*)xmalloc(sizeof(float) * N_OUT);
  for (int c = 0; c < copies; ++c) {  // every copy against the reference
    ggml_backend_tensor_get(y[c], yv, 0, sizeof(float) * N_OUT);
    for (int n = 0; n < N_OUT; ++n) {
      const double e = fabs((double)yv[n] - yref[n]);
      if (e > r->max_abs_err || e != e) r->max_abs_err = e;
      if (fabs(yref[n]) > r->max_abs_ref) r->max_abs_ref = fabs(yref[n]);
    }
  }
  free(yv);
  r->ok = 1;
  ggml_backend_buffer_free(cbuf);
  ggml_free(cctx);
  ggml_backend_buffer_free(wbuf);
  ggml_free(wctx);
}

static void loadavg(char* out, size_t n) {
  FILE* f = fopen("/proc/loadavg", "r");
  out[0] = 0;
  if (f) {
    if (fgets(out, (int)n, f)) out[strcspn(out, "\n")] = 0;
    fclose(f);
  }
}

int main(int argc, char** argv) {
  int reps = 100, copies = 6;
  const char* commit = "unknown";
  const char* source = "unknown";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--copies")) copies = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--llama-cpp-commit")) commit = argv[i + 1];
    else if (!strcmp(argv[i], "--source")) source = argv[i + 1];
  }
  if (reps < 1 || reps > MAX_REPS || copies < 1 || copies > MAX_COPIES) {
    fprintf(stderr, "bad --reps or --copies\n");
    return 2;
  }
  char load_before[128], load_after[128];
  loadavg(load_before, sizeof(load_before));

  // 1. bandwidth probe
  const size_t probe_bytes = (size_t)1 << 30;
  uint64_t* pbuf = (uint64_t*)xmalloc(probe_bytes);
  for (size_t i = 0; i < probe_bytes / 8; ++i) pbuf[i] = i;
  double probe[3] = {0, 0, 0}, probe_foreign[3] = {0, 0, 0};
  for (int t = 1; t <= 2; ++t) {
    const struct cpu_snap s0 = cpu_snap();
    probe[t] = measure_read_bandwidth(t, probe_bytes, 5, pbuf);
    probe_foreign[t] = foreign_cores(s0, cpu_snap());
    fprintf(stderr, "read bandwidth probe, %d thread(s), 1 GiB: %.2f GB/s\n", t, probe[t] / 1e9);
  }
  free(pbuf);

  // 2. inputs
  const size_t nel = (size_t)N_OUT * K_IN;
  float* wf = (float*)xmalloc(nel * sizeof(float));
  float* deq = (float*)xmalloc(nel * sizeof(float));
  float* x = (float*)xmalloc(K_IN * sizeof(float));
  double* yref = (double*)xmalloc(N_OUT * sizeof(double));
  fill_normal(wf, nel, 0.02);
  fill_normal(x, K_IN, 1.0);
  memset(deq, 0, nel * sizeof(float));  // touch the to_float output before timing

  ggml_cpu_init();
  ggml_backend_t backend = ggml_backend_cpu_init();
  ggml_backend_buffer_type_t rbuft = repack_buft();

  const enum ggml_type types[3] = {GGML_TYPE_Q4_0, GGML_TYPE_IQ4_NL, GGML_TYPE_Q8_0};
  printf("{\n  \"engine\": \"ggml (llama.cpp CPU backend)\",\n  \"ggml_version\": \"%s\",\n  \"ggml_commit\": \"%s\",\n",
         ggml_version(), ggml_commit());
  printf("  \"llama_cpp_commit\": \"%s\",\n  \"source\": \"%s\",\n", commit, source);
  printf("  \"cpu\": {\"avx2\": %d, \"avx512\": %d, \"avx512_vnni\": %d, \"avx512_bf16\": %d, \"llamafile\": %d},\n",
         ggml_cpu_has_avx2(), ggml_cpu_has_avx512(), ggml_cpu_has_avx512_vnni(), ggml_cpu_has_avx512_bf16(),
         ggml_cpu_has_llamafile());
  printf("  \"shape\": {\"N_out\": %d, \"K_in\": %d, \"ggml_ne0\": %d, \"ggml_ne1\": %d},\n", N_OUT, K_IN, K_IN, N_OUT);
  printf("  \"gemv_reps\": %d, \"weight_copies\": %d, \"repack_buffer_type\": %s,\n", reps, copies,
         rbuft ? "\"CPU_REPACK\"" : "null");
  printf("  \"probe_read_GBps\": {\"1\": %.3f, \"2\": %.3f}, \"probe_foreign_cores\": {\"1\": %.2f, \"2\": %.2f},\n",
         probe[1] / 1e9, probe[2] / 1e9, probe_foreign[1], probe_foreign[2]);
  printf("  \"types\": {");
  fflush(stdout);

  for (int ti = 0; ti < 3; ++ti) {
    const enum ggml_type type = types[ti];
    const size_t qbytes = ggml_row_size(type, K_IN) * N_OUT;
    void* wq = xmalloc(qbytes);
    ggml_quantize_init(type);
    fprintf(stderr, "%s: quantize...\n", ggml_type_name(type));

    // c. quantize (the last run leaves the weights for the rest)
    // Up to 3 runs per thread count, fewer once 10 s are spent (IQ4_NL takes ~25 s a run).
    double qmed[3], qt[8], qforeign[3];
    int qreps[3];
    for (int threads = 1; threads <= 2; ++threads) {
      const struct cpu_snap s0 = cpu_snap();
      double spent = 0;
      int i = 0;
      while (i < 3 && (i == 0 || spent < 10.0)) {
        const double t0 = now_s();
        quantize_threads(type, wf, wq, threads);
        qt[i] = now_s() - t0;
        spent += qt[i++];
      }
      qreps[threads] = i;
      qforeign[threads] = foreign_cores(s0, cpu_snap());
      qmed[threads] = median(qt, i);
    }

    // b. to_float, one thread
    fprintf(stderr, "%s: to_float...\n", ggml_type_name(type));
    const ggml_to_float_t to_float = ggml_get_type_traits(type)->to_float;
    const int dreps = 5;
    double dt[8];
    const struct cpu_snap d0 = cpu_snap();
    for (int i = 0; i < dreps; ++i) {
      const double t0 = now_s();
      to_float(wq, deq, (int64_t)nel);
      dt[i] = now_s() - t0;
    }
    const double dforeign = foreign_cores(d0, cpu_snap());
    const double dmed = median(dt, dreps);
    double rmse = 0;
    for (size_t i = 0; i < nel; ++i) rmse += ((double)deq[i] - wf[i]) * ((double)deq[i] - wf[i]);
    rmse = sqrt(rmse / (double)nel);

    // reference y = dequant(W)·x in double
    for (int n = 0; n < N_OUT; ++n) {
      double s = 0;
      const float* row = deq + (size_t)n * K_IN;
      for (int k = 0; k < K_IN; ++k) s += (double)row[k] * x[k];
      yref[n] = s;
    }

    // a. GEMV, plain and repacked weights
    struct gemv_result res[2];
    fprintf(stderr, "%s: gemv plain...\n", ggml_type_name(type));
    run_gemv(backend, ggml_backend_cpu_buffer_type(), type, wq, x, yref, copies, reps, &res[0]);
    memset(&res[1], 0, sizeof(res[1]));
    {
      // Only where ggml has a repack kernel for this type on this CPU (none for Q8_0 on x86):
      // allocate one tensor in the repack buffer and look at the traits it got.
      if (rbuft) {
        struct ggml_init_params ip = {ggml_tensor_overhead() + 256, NULL, true};
        struct ggml_context* c1 = ggml_init(ip);
        struct ggml_tensor* t1 = ggml_new_tensor_2d(c1, type, K_IN, N_OUT);
        ggml_backend_buffer_t b1 = ggml_backend_alloc_ctx_tensors_from_buft(c1, rbuft);
        const int has = b1 && t1->extra != NULL;
        if (b1) ggml_backend_buffer_free(b1);
        ggml_free(c1);
        if (has) {
          fprintf(stderr, "%s: gemv repack...\n", ggml_type_name(type));
          run_gemv(backend, rbuft, type, wq, x, yref, copies, reps, &res[1]);
        }
      }
    }

    printf("%s\n    \"%s\": {\n      \"weight_bytes\": %zu, \"bits_per_weight\": %.3f, \"quant_rmse_vs_f32\": %.6g,\n",
           ti ? "," : "", ggml_type_name(type), qbytes, 8.0 * (double)qbytes / (double)nel, rmse);
    printf("      \"quantize\": {\"f32_input_bytes\": %zu, \"median_s\": {\"1\": %.4f, \"2\": %.4f}, "
           "\"f32_GBps\": {\"1\": %.4f, \"2\": %.4f}, \"runs\": {\"1\": %d, \"2\": %d}, "
           "\"foreign_cores\": {\"1\": %.2f, \"2\": %.2f}},\n",
           nel * sizeof(float), qmed[1], qmed[2], (double)(nel * sizeof(float)) / qmed[1] / 1e9,
           (double)(nel * sizeof(float)) / qmed[2] / 1e9, qreps[1], qreps[2], qforeign[1], qforeign[2]);
    printf("      \"to_float_1thr\": {\"median_s\": %.5f, \"Gelem_per_s\": %.4f, \"out_f32_GBps\": %.4f, "
           "\"in_GBps\": %.4f, \"foreign_cores\": %.2f},\n",
           dmed, (double)nel / dmed / 1e9, (double)(nel * sizeof(float)) / dmed / 1e9, (double)qbytes / dmed / 1e9,
           dforeign);
    printf("      \"gemv\": {");
    const char* names[2] = {"plain", "repack"};
    int first = 1;
    for (int l = 0; l < 2; ++l) {
      const struct gemv_result* r = &res[l];
      if (!r->ok) continue;
      printf("%s\n        \"%s\": {\"repacked\": %s, \"max_abs_err_vs_ref\": %.4g, \"max_abs_ref\": %.4g,", first ? "" : ",",
             names[l], r->repacked ? "true" : "false", r->max_abs_err, r->max_abs_ref);
      first = 0;
      for (int t = 1; t <= 2; ++t) {
        const double bw = (double)qbytes / r->median_s[t];
        printf("\n          \"%d\": {\"median_us\": %.1f, \"min_us\": %.1f, \"weight_GBps\": %.3f, \"probe_GBps\": %.3f, "
               "\"frac_bw\": %.3f, \"weight_GBps_at_min\": %.3f, \"foreign_cores\": %.2f}%s",
               t, r->median_s[t] * 1e6, r->min_s[t] * 1e6, bw / 1e9, probe[t] / 1e9, bw / probe[t],
               (double)qbytes / r->min_s[t] / 1e9, r->foreign[t], t == 1 ? "," : "");
      }
      printf("}");
    }
    printf("\n      }\n    }");
    fflush(stdout);
    free(wq);
  }
  loadavg(load_after, sizeof(load_after));
  printf("\n  },\n  \"loadavg_before\": \"%s\",\n  \"loadavg_after\": \"%s\"\n}\n", load_before, load_after);
  ggml_backend_free(backend);
  ggml_quantize_free();
  free(wf), free(deq), free(x), free(yref);
  return 0;
}
