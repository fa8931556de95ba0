// Running the real nibble binary as a separate process, the way a user or a crash
// would: its own working directory and environment, stdin from a file or a pipe the
// test keeps writing to, stdout to a file, /dev/full or closed, a signal after a delay,
// and a hard timeout (SIGKILL) so a hang fails the test instead of the suite.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "util/temp_dir.h"

namespace nibble::test {

struct ProcOptions {
  std::string cwd;                        // empty: the test's
  std::vector<std::string> env;           // "NAME=value" added to the environment
  std::string stdin_path = "/dev/null";   // ignored when `stdin_pipe`
  bool stdin_pipe = false;                // the test writes stdin through Proc::Write
  std::string stdout_path;                // empty: captured; "-": closed; "|": a pipe nobody reads
  double timeout_s = 60;                  // then SIGKILL and timed_out
};

struct ProcResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the signal that ended it, 0 if it exited
  bool timed_out = false;
  std::string out, err;
};

// A running child. Destroying it kills the child if it is still running.
class Proc {
 public:
  Proc(const std::vector<std::string>& argv, const ProcOptions& o) : o_(o) {
    out_file_ = dir_.File("stdout");
    err_file_ = dir_.File("stderr");
    signal(SIGPIPE, SIG_IGN);  // the test writing to a child that exited gets EPIPE, not death
    int in_pipe[2] = {-1, -1};
    if (o.stdin_pipe && pipe(in_pipe) != 0) std::abort();
    int broken[2] = {-1, -1};
    if (o.stdout_path == "|") {
      if (pipe(broken) != 0) std::abort();
      close(broken[0]);  // no reader from the start: the child's writes get EPIPE / SIGPIPE
    }
    pid_ = fork();
    if (pid_ == 0) {
      // As a user's shell starts it, whatever runs the suite (a background job ignores
      // SIGINT, nohup ignores SIGHUP): default dispositions, nothing blocked.
      for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) signal(sig, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) _exit(126);
      for (const std::string& e : o.env) putenv(const_cast<char*>(e.c_str()));
      const int in = o.stdin_pipe ? in_pipe[0] : open(o.stdin_path.c_str(), O_RDONLY);
      dup2(in, 0);
      // stderr before stdout: a closed stdout must stay closed, not become the next open.
      const int err = open(err_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(err, 2);
      if (o.stdout_path == "-") {
        close(1);
      } else if (o.stdout_path == "|") {
        dup2(broken[1], 1);
      } else {
        const std::string p = o.stdout_path.empty() ? out_file_ : o.stdout_path;
        const int out = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out, 1);
      }
      for (int fd = 3; fd < 64; ++fd) close(fd);  // the test's own files and pipe ends
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    if (o.stdin_pipe) {
      close(in_pipe[0]);
      stdin_fd_ = in_pipe[1];
    }
    if (broken[1] >= 0) close(broken[1]);
    start_ = std::chrono::steady_clock::now();
  }
  ~Proc() {
    if (!done_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    CloseStdin();
  }
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  pid_t pid() const { return pid_; }
  void Write(const std::string& s) {
    if (stdin_fd_ >= 0) (void)!write(stdin_fd_, s.data(), s.size());
  }
  void CloseStdin() {
    if (stdin_fd_ >= 0) close(stdin_fd_);
    stdin_fd_ = -1;
  }
  void Signal(int sig) { kill(pid_, sig); }
  // What the child has written to stdout so far (when captured).
  std::string StdoutSoFar() const { return Slurp(out_file_); }
  std::string StderrSoFar() const { return Slurp(err_file_); }
  bool Running() {
    if (done_) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      Finish(status);
      return false;
    }
    return true;
  }

  ProcResult Wait() {
    while (!done_) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        Finish(status);
        break;
      }
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count() > o_.timeout_s) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        Finish(status);
        result_.timed_out = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return result_;
  }

  static std::string Slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }

 private:
  void Finish(int status) {
    done_ = true;
    if (WIFEXITED(status)) result_.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result_.signal = WTERMSIG(status);
    result_.out = o_.stdout_path.empty() ? Slurp(out_file_) : "";
    result_.err = Slurp(err_file_);
  }

  ProcOptions o_;
  TempDir dir_;
  std::string out_file_, err_file_;
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  bool done_ = false;
  ProcResult result_;
  std::chrono::steady_clock::time_point start_;
};

inline ProcResult Run(const std::vector<std::string>& argv, const ProcOptions& o = {}) {
  Proc p(argv, o);
  p.CloseStdin();
  return p.Wait();
}

}  // namespace nibble::test
