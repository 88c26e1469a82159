// Flags shared by the commands that run a Peer (peer, peers), and the report
// formatting they share with the demo.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "jamnet/peer/peer.hpp"

namespace jamnet::app {

struct PeerFlags {
  std::string name;
  std::string session = "default";
  std::string id;
  std::string bind = "127.0.0.1:0";  // nothing leaves this host unless asked
  std::string multicast = "239.255.74.77:47700";
  std::string multicast_if;
  bool no_multicast = false;
  std::vector<std::string> connect;
  int announce_ms = 250;
  int heartbeat_ms = 100;
  int timeout_ms = 1500;
  std::string key_file;         // --key-file
  std::string passphrase_file;  // --passphrase-file (or JAMNET_PASSPHRASE)

  void add_to(CLI::App& cmd);
  // Throws CLI::ValidationError naming the flag on a bad combination.
  PeerConfig to_config() const;
};

// One line: peers, their RTT and loss.
std::string status_line(const PeerReport& r);
// The summary table printed at the end of `peer` and `demo`.
void print_summary(std::FILE* out, const std::vector<PeerReport>& reports);
// MIDI per receiver and sender: delivered, duplicates dropped, journal repairs, stuck notes.
void print_midi_summary(std::FILE* out, const std::vector<PeerReport>& reports);

}  // namespace jamnet::app
