# Sourced by the peer scripts: which CPU level both engines run at. PEER_CPU=native (the
# default) builds llama.cpp with GGML_NATIVE=ON and runs nibble uncapped; PEER_CPU=avx2
# builds llama.cpp for AVX2 only (GGML_NATIVE=OFF, AVX/AVX2/FMA/F16C/BMI2 on, every AVX512*,
# AVX_VNNI and AMX option off) into its own build folders and runs nibble with
# NIBBLE_CPU=avx2, so an AVX-512 machine measures what an AVX2-only CPU (Zen 3) runs.
# Needs: nothing. Sets: peer_cpu, ggml_isa_flags (CMake -D flags), isa_suffix (build folder
# suffix), cc_march (for the peer's own C programs), nibble_cpu_env (env assignment).
peer_cpu="${PEER_CPU:-native}"
case "$peer_cpu" in
  native)
    ggml_isa_flags=(-DGGML_NATIVE=ON)
    isa_suffix=""
    cc_march="-march=native"
    nibble_cpu_env="NIBBLE_CPU=native"
    ;;
  avx2)
    ggml_isa_flags=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
      -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF
      -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
    isa_suffix="-avx2"
    cc_march="-march=haswell"
    nibble_cpu_env="NIBBLE_CPU=avx2"
    ;;
  *) echo "PEER_CPU must be native or avx2, got '$peer_cpu'" >&2; exit 2 ;;
esac
