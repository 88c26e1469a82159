// Child processes and JACK helpers for integration tests: a program started
// with fork/exec and always stopped again (SIGINT, then SIGKILL).
#pragma once

#include <jack/jack.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace jamnet::testing {

struct Child {
  pid_t pid = -1;
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child(Child&& o) noexcept : pid(o.pid) { o.pid = -1; }
  Child& operator=(Child&& o) noexcept {
    if (this != &o) {
      stop();
      pid = o.pid;
      o.pid = -1;
    }
    return *this;
  }
  ~Child() { stop(); }
  bool running() const { return pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0; }
  // `sig` first (SIGINT: a clean stop), SIGKILL after 3 s.
  void stop(int sig = SIGINT) {
    if (pid <= 0) return;
    ::kill(pid, sig);
    int status = 0;
    for (int i = 0; i < 300 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (::waitpid(pid, &status, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
    }
    pid = -1;
  }
};

inline Child spawn(std::vector<std::string> args) {
  std::fflush(stdout);  // a child must not inherit output not yet written
  std::fflush(stderr);
  Child c;
  c.pid = ::fork();
  if (c.pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return c;
}

inline jack_client_t* open_jack_client(const std::string& name, const std::string& server) {
  jack_status_t status{};
  return jack_client_open(name.c_str(),
                          static_cast<jack_options_t>(JackNoStartServer | JackServerName), &status,
                          server.c_str());
}

// Connects from -> to, waiting up to `wait` for the ports to appear.
inline bool connect_when_there(jack_client_t* c, const std::string& from, const std::string& to,
                               std::chrono::milliseconds wait) {
  const auto end = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < end) {
    const int rc = jack_connect(c, from.c_str(), to.c_str());
    if (rc == 0 || rc == EEXIST) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace jamnet::testing
