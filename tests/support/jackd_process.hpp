// A private `jackd -d dummy` for tests: started, waited for (polling
// `jack_wait -c` every 10 ms), and always stopped again.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace jamnet::testing {

class JackdProcess {
 public:
  JackdProcess() = default;
  JackdProcess(const JackdProcess&) = delete;
  JackdProcess& operator=(const JackdProcess&) = delete;
  ~JackdProcess() { stop(); }

  // Tries real-time first (root can), then without. On failure `why` says why.
  bool start(const std::string& name, std::uint32_t rate, std::uint32_t period, std::string& why) {
    name_ = name;
    log_ = "/tmp/" + name_ + ".log";
    for (const bool realtime : {true, false}) {
      if (start_once(realtime, rate, period, why)) return true;
      stop();
    }
    return false;
  }

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
      int status = 0;
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      pid_ = -1;
    }
    if (!log_.empty()) std::remove(log_.c_str());
  }

  const std::string& name() const noexcept { return name_; }

  std::string read_log() const {
    std::ifstream f(log_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

 private:
  bool start_once(bool realtime, std::uint32_t rate, std::uint32_t period, std::string& why) {
    if (::access("/usr/bin/jackd", X_OK) != 0 && ::access("/usr/local/bin/jackd", X_OK) != 0) {
      why = "no jackd binary";
      return false;
    }
    pid_ = ::fork();
    if (pid_ < 0) {
      why = "fork failed";
      return false;
    }
    if (pid_ == 0) {
      std::FILE* out = std::freopen(log_.c_str(), "w", stdout);
      if (out != nullptr) ::dup2(::fileno(stdout), 2);
      const std::string r = std::to_string(rate), p = std::to_string(period);
      ::execlp("jackd", "jackd", realtime ? "-R" : "-r", "-n", name_.c_str(), "-d", "dummy", "-r",
               r.c_str(), "-p", p.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // `jack_wait -c` prints "running"/"not running"; its exit status is 0 either way.
    const std::string cmd = "jack_wait -s '" + name_ + "' -c 2>/dev/null";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        why = "jackd exited early: " + read_log();
        return false;
      }
      if (std::FILE* p = ::popen(cmd.c_str(), "r")) {
        char buf[64] = {};
        const bool got = std::fgets(buf, sizeof buf, p) != nullptr;
        ::pclose(p);
        if (got && std::string(buf).rfind("running", 0) == 0) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    why = "jackd did not come up within 5 s: " + read_log();
    return false;
  }

  std::string name_;
  std::string log_;
  pid_t pid_ = -1;
};

}  // namespace jamnet::testing
