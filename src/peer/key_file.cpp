#include "jamnet/peer/key_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace jamnet {

namespace {

constexpr std::size_t kMaxSecretFile = 4096;  // a key is 65 bytes; a passphrase a line

std::string mode_text(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// The file's bytes, once it is known to be a regular file only its owner can use.
Result<std::string> read_secret(const std::string& path, const char* what) {
  const int fd = ::open(path.c_str(),
                        O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);  // a FIFO must not hang us
  if (fd < 0)
    return make_error(Errc::kIo, std::string("cannot open the ") + what + " file " + path + ": " +
                                     std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(Errc::kInvalidArgument,
                      std::string("the ") + what + " file " + path + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ::close(fd);
    return make_error(Errc::kInvalidArgument,
                      std::string("the ") + what + " file " + path +
                          " can be used by others (mode " + mode_text(st.st_mode) +
                          "); a secret others can read is not one: run " + "chmod 600 " + path);
  }
  std::string data(kMaxSecretFile + 1, '\0');
  std::size_t got = 0;
  for (;;) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return make_error(Errc::kIo, std::string("cannot read the ") + what + " file " + path + ": " +
                                       std::strerror(e));
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
    if (got == data.size()) break;
  }
  ::close(fd);
  if (got > kMaxSecretFile)
    return make_error(Errc::kInvalidArgument,
                      std::string("the ") + what + " file " + path + " is too long");
  data.resize(got);
  return data;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<protocol::SessionKey> write_new_key_file(const std::string& path) {
  const protocol::SessionKey key = protocol::SessionKey::random();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST)
      return make_error(
          Errc::kInvalidArgument,
          "key file " + path + " exists already; keygen never overwrites a key (remove it first)");
    return make_error(Errc::kIo, "cannot create key file " + path + ": " + std::strerror(errno));
  }
  if (::fchmod(fd, 0600) != 0) {  // whatever the umask
    const int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return make_error(Errc::kIo,
                      "cannot make key file " + path + " owner-only: " + std::strerror(e));
  }
  std::string text;
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::uint8_t b : key.bytes) {
    text.push_back(kHex[b >> 4]);
    text.push_back(kHex[b & 15]);
  }
  text.push_back('\n');
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int e = errno;
  protocol::wipe(text);
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return make_error(Errc::kIo, "cannot write key file " + path + ": " + std::strerror(e));
  }
  return key;
}

Result<protocol::SessionKey> read_key_file(const std::string& path) {
  auto text = read_secret(path, "key");
  if (!text) return std::unexpected(text.error());
  struct Wipe {
    std::string& s;
    ~Wipe() { protocol::wipe(s); }
  } wipe_text{*text};
  std::string_view t = *text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' '))
    t.remove_suffix(1);
  protocol::SessionKey key;
  if (t.size() != 2 * key.bytes.size())
    return make_error(
        Errc::kInvalidArgument,
        "key file " + path + " must hold 64 hex digits (a 256-bit key, as `jamnet keygen` writes)");
  for (std::size_t i = 0; i < key.bytes.size(); ++i) {
    const int hi = hex_value(t[2 * i]), lo = hex_value(t[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return make_error(Errc::kInvalidArgument,
                        "key file " + path +
                            " must hold 64 hex digits (a 256-bit key, as `jamnet keygen` writes)");
    key.bytes[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return key;
}

Result<std::string> read_passphrase_file(const std::string& path) {
  auto text = read_secret(path, "passphrase");
  if (!text) return std::unexpected(text.error());
  std::string line = text->substr(0, text->find('\n'));
  protocol::wipe(*text);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty())
    return make_error(Errc::kInvalidArgument, "the passphrase file " + path + " is empty");
  return line;
}

}  // namespace jamnet
