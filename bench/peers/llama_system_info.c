// Prints llama.cpp's system_info line (the CPU features its build uses), for the peer
// tables in bench/RESULTS.md. Built by bench/peers/run_quant_generation_peer.sh.
#include <stdio.h>

#include "llama.h"

int main(void) {
  llama_backend_init();
  printf("%s\n", llama_print_system_info());
  llama_backend_free();
  return 0;
}
