// How the `jamnet` subcommands plug into the CLI: each registers its flags on
// the root app and, when chosen, sets `run`, which main() calls after parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "jamnet/core/result.hpp"
#include "jamnet/net/endpoint.hpp"

namespace jamnet::app {

using Runner = std::function<int()>;

void add_peer_commands(CLI::App& root, Runner& run);   // peer, peers
void add_frame_commands(CLI::App& root, Runner& run);  // send, listen
void add_netsim_command(CLI::App& root, Runner& run);
void add_demo_command(CLI::App& root, Runner& run);
void add_transport_command(CLI::App& root, Runner& run);
void add_mix_command(CLI::App& root, Runner& run);
void add_gpu_command(CLI::App& root, Runner& run);  // gpu info
void add_keygen_command(CLI::App& root, Runner& run);

// True once SIGINT or SIGTERM arrived; commands poll it and stop cleanly.
bool stop_requested() noexcept;
// Sleeps up to `ms`, returning early (false) when a stop was requested.
bool sleep_unless_stopped(int ms) noexcept;

// CLI11 validator for HOST:PORT flags, so a bad address names its flag.
struct EndpointValidator : CLI::Validator {
  EndpointValidator();
};
// Parses a flag value already checked by EndpointValidator.
net::Endpoint endpoint_arg(const std::string& text);

}  // namespace jamnet::app
