// Key and passphrase files of keyed sessions (docs/protocol.md, Security).
//
// A key file holds the 256-bit session key as 64 hex digits and a newline,
// readable by its owner only (mode 0600). Readers refuse a key or
// passphrase file that anyone else may read or write, or that is not a
// regular file, and say how to fix it: a secret others can read is not one.
#pragma once

#include <string>

#include "jamnet/core/result.hpp"
#include "jamnet/protocol/security.hpp"

namespace jamnet {

// Creates `path` with a fresh random key, mode 0600. Refuses to overwrite an
// existing file (a key in use would be lost).
Result<protocol::SessionKey> write_new_key_file(const std::string& path);
Result<protocol::SessionKey> read_key_file(const std::string& path);
// The passphrase: the file's first line, without its line end.
Result<std::string> read_passphrase_file(const std::string& path);

}  // namespace jamnet
