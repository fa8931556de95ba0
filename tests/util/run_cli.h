// Runs the nibble CLI binary (NIBBLE_CLI_PATH, defined for the e2e tests) and
// captures its exit code and output.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "util/temp_dir.h"

namespace nibble::test {

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout (RunCliMerged: stdout and stderr together)
  std::string err;  // stderr (empty for RunCliMerged)
};

namespace detail {
inline RunResult RunShell(const std::string& cmd) {
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}
}  // namespace detail

// stdout captured, stderr sent to a file, so the two can be told apart.
inline RunResult RunCli(const std::string& args) {
  TempDir dir;
  const std::string err_file = dir.File("stderr.txt");
  RunResult r = detail::RunShell(std::string(NIBBLE_CLI_PATH) + " " + args + " 2>" + err_file);
  std::ifstream f(err_file, std::ios::binary);
  r.err.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return r;
}

// RunCli with environment assignments first, e.g. RunCliEnv("NIBBLE_CPU=scalar", "--version");
// "-u NAME" removes a variable (env(1) syntax).
inline RunResult RunCliEnv(const std::string& env, const std::string& args) {
  TempDir dir;
  const std::string err_file = dir.File("stderr.txt");
  RunResult r = detail::RunShell("env " + env + " " + std::string(NIBBLE_CLI_PATH) + " " + args + " 2>" + err_file);
  std::ifstream f(err_file, std::ios::binary);
  r.err.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return r;
}

// stdout and stderr merged into `out`, in the order they were written.
inline RunResult RunCliMerged(const std::string& args) {
  return detail::RunShell(std::string(NIBBLE_CLI_PATH) + " " + args + " 2>&1");
}

}  // namespace nibble::test
