#include "command.hpp"
namespace jamnet::app {
void add_peer_commands(CLI::App&, Runner&) {}
void add_frame_commands(CLI::App&, Runner&) {}
void add_demo_command(CLI::App&, Runner&) {}
}
