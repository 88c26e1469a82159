// jamnet keygen FILE: a new session key for keyed sessions.
#include <cstdio>
#include <memory>
#include <string>

#include "command.hpp"
#include "jamnet/peer/key_file.hpp"

namespace jamnet::app {

void add_keygen_command(CLI::App& root, Runner& run) {
  auto path = std::make_shared<std::string>();
  auto* cmd = root.add_subcommand(
      "keygen",
      "Write a new random 256-bit session key to FILE (64 hex digits, mode 0600). Every member "
      "of a keyed session needs the same key: copy the file to them over a channel you trust. "
      "Never overwrites an existing file.");
  cmd->add_option("FILE", *path, "Where to write the key (must not exist yet)")->required();
  cmd->callback([path, &run] {
    run = [path] {
      auto key = write_new_key_file(*path);
      if (!key) {
        std::fprintf(stderr, "jamnet keygen: %s\n", key.error().message.c_str());
        return 1;
      }
      std::printf("wrote a new 256-bit session key to %s (readable by you only)\n", path->c_str());
      return 0;
    };
  });
}

}  // namespace jamnet::app
