// jamnet: real-time audio and MIDI between computers. Command-line entry point.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>

#include "command.hpp"

namespace jamnet::app {

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) {
  g_stop.store(true);
}
}  // namespace

bool stop_requested() noexcept {
  return g_stop.load(std::memory_order_relaxed);
}

bool sleep_unless_stopped(int ms) noexcept {
  for (int left = ms; left > 0; left -= 10) {
    if (stop_requested()) return false;
    const int step = left < 10 ? left : 10;
    timespec ts{0, static_cast<long>(step) * 1'000'000};
    ::nanosleep(&ts, nullptr);
  }
  return !stop_requested();
}

EndpointValidator::EndpointValidator() {
  name_ = "HOST:PORT";
  func_ = [](std::string& value) -> std::string {
    auto ep = net::Endpoint::parse(value);
    return ep ? std::string{} : ep.error().message;
  };
}

net::Endpoint endpoint_arg(const std::string& text) {
  return net::Endpoint::parse(text).value();
}

}  // namespace jamnet::app

int main(int argc, char** argv) {
  using namespace jamnet::app;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{
      "jamnet: real-time audio and MIDI between computers over TOAST/UDP.\n"
      "Start with `jamnet demo`; see `jamnet COMMAND --help` for each command."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "jamnet 0.1.0");
  Runner run;
  add_peer_commands(app, run);
  add_frame_commands(app, run);
  add_netsim_command(app, run);
  add_demo_command(app, run);
  add_transport_command(app, run);
  add_mix_command(app, run);
  add_gpu_command(app, run);
  add_keygen_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (argc > 1 && argv[1][0] != '-' && app.get_subcommands().empty()) {
      std::fprintf(stderr, "jamnet: unknown command '%s'\nRun with --help for the list.\n",
                   argv[1]);
    } else {
      std::fprintf(stderr, "jamnet: %s\nRun with --help for usage.\n", e.what());
    }
    return 2;
  }
  if (!run) return 2;
  try {
    return run();
  } catch (const CLI::ParseError& e) {  // a combination of flags checked after parsing
    std::fprintf(stderr, "jamnet: %s\nRun with --help for usage.\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "jamnet: error: %s\n", e.what());
    return 1;
  }
}
