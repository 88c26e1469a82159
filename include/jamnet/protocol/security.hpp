// Keyed sessions: what a key is, how a passphrase becomes one, how a session
// name becomes an id, and how a frame's payload is sealed. Pure functions and
// plain state, no I/O (key files are peer/key_file.hpp), so all of it is
// fuzzable. docs/protocol.md (Security) is the specification.
//
// Cipher: XChaCha20-Poly1305 (IETF construction, libsodium), the same on every
// peer. A sealed payload, inside an ordinary TOAST frame:
//
//   off size field
//     0    4 epoch        which epoch key sealed it (big-endian)
//     4    4 sent         the sender's wall clock at sealing, Unix seconds mod 2^32
//     8   24 nonce        sender tag (8) | sender incarnation (8) | counter (8)
//    32    n ciphertext   the payload, encrypted
//  32+n   16 tag          Poly1305
//
// The associated data (authenticated, not encrypted) is the frame's 38
// header bytes followed by epoch and sent (8 bytes).
//
// Nonces never repeat: the sender tag comes from the peer id, the
// incarnation is fresh per process start (random), and the counter counts
// every frame the process seals. Epoch keys are derived from the session key
// (BLAKE2b via crypto_kdf); a sender moves to the next epoch every
// 2^epoch_bits frames, and receivers accept a sender's previous epoch and
// any later one, so a rotation loses nothing.
//
// Replays: a receiver keeps a replay window per sender incarnation. A
// sender run it has no state for (first frame, or the receiver restarted)
// is taken only if its frame was sealed within kFreshSeconds of the
// receiver's wall clock, so frames recorded from an earlier run cannot be
// played back later (members' clocks must agree within that, as NTP keeps them).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "jamnet/core/result.hpp"
#include "jamnet/core/uuid.hpp"
#include "jamnet/protocol/toast_frame.hpp"

namespace jamnet::protocol {

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kNonceBytes = 24;
inline constexpr std::size_t kTagBytes = 16;
inline constexpr std::size_t kSealHeaderBytes = 8 + kNonceBytes;
// How far (either way) a new sender run's frame may be from the receiver's
// wall clock.
inline constexpr std::uint32_t kFreshSeconds = 120;
// What sealing adds to a payload: budget it in packet sizing.
inline constexpr std::size_t kSealOverhead = kSealHeaderBytes + kTagBytes;

// Argon2id limits for a passphrase (fixed: every member must derive the same
// key): libsodium's "interactive" level, 2 passes over 64 MiB.
inline constexpr unsigned long long kPassphraseOpsLimit = 2;
inline constexpr std::size_t kPassphraseMemLimit = 64u << 20;

// Key material: wiped when it goes (sodium_memzero).
struct SessionKey {
  std::array<std::uint8_t, kKeyBytes> bytes{};
  SessionKey() = default;
  SessionKey(const SessionKey&) = default;
  SessionKey& operator=(const SessionKey&) = default;
  ~SessionKey();
  // From the operating system's CSPRNG; aborts (with a message) if there is
  // none, rather than hand out a predictable key.
  static SessionKey random();
  friend bool operator==(const SessionKey&, const SessionKey&) = default;
};

// Wipes `bytes` so the optimiser cannot skip it (passphrases, key files read).
void wipe(std::span<std::uint8_t> bytes) noexcept;
void wipe(std::string& s) noexcept;

// Argon2id over the passphrase, salted with a hash of the session name (so
// one passphrase used by two bands gives two keys). Slow on purpose
// (~0.1-0.5 s); an empty passphrase is refused.
Result<SessionKey> key_from_passphrase(std::string_view passphrase, std::string_view session_name);

// The id of an open session: the UUID v5 (RFC 9562, SHA-1) of its name in
// JAMNet's namespace (kSessionNamespace).
Uuid open_session_id(std::string_view name);
// The id of a keyed session: a keyed BLAKE2b of the name, marked as a
// version 8 UUID. Two bands that pick the same name but different keys
// never see each other's frames.
Uuid keyed_session_id(const SessionKey& key, std::string_view name);
// UUID v5 of `name` in `ns`.
Uuid uuid_v5(const Uuid& ns, std::string_view name);
extern const Uuid kSessionNamespace;

// A 16-byte MAC of `msg` under `secret` (keyed BLAKE2b): discovery's
// stateless address cookies.
std::array<std::uint8_t, 16> mac16(const SessionKey& secret,
                                   std::span<const std::uint8_t> msg) noexcept;

// The key of one epoch, derived from the session key.
SessionKey epoch_key(const SessionKey& session, std::uint32_t epoch);

// Parsed seal header of a sealed payload.
struct SealHeader {
  std::uint32_t epoch = 0;
  std::uint32_t sent_s = 0;  // sender's wall clock, Unix seconds mod 2^32
  std::uint64_t sender = 0;  // sender tag (from its peer id)
  std::uint64_t incarnation = 0;
  std::uint64_t counter = 0;
};
std::optional<SealHeader> peek_seal(std::span<const std::uint8_t> sealed) noexcept;

// Seals `plain` into `out` (which must hold plain.size() + kSealOverhead
// bytes) with the epoch key; `ad` is the frame header (at most kMaxAd
// bytes). Returns the bytes written, 0 when `out` is too small. Never
// allocates.
inline constexpr std::size_t kMaxAd = 64;
std::size_t seal(const SessionKey& epoch_key, const SealHeader& h, std::span<const std::uint8_t> ad,
                 std::span<const std::uint8_t> plain, std::span<std::uint8_t> out) noexcept;
// Opens a sealed payload into `out` (at least sealed.size() - kSealOverhead
// bytes). Returns the plaintext size, or nothing when it does not
// authenticate (wrong key, a flipped bit, a forged header, an `ad` over
// kMaxAd). Never allocates.
std::optional<std::size_t> open(const SessionKey& epoch_key, std::span<const std::uint8_t> ad,
                                std::span<const std::uint8_t> sealed,
                                std::span<std::uint8_t> out) noexcept;

// The sender side of a keyed session: one per process. Any thread may seal:
// the counter is atomic, and each thread keeps its own copy of the current
// epoch key (derived once per thread and epoch).
class Sealer {
 public:
  // epoch_bits: the sender moves to the next epoch key every 2^epoch_bits
  // frames (the default rotates about every 2^24 frames, hours of audio).
  Sealer(const SessionKey& session, const Uuid& peer_id, std::uint64_t incarnation,
         unsigned epoch_bits = 24);
  std::size_t seal(std::span<const std::uint8_t> ad, std::span<const std::uint8_t> plain,
                   std::span<std::uint8_t> out) noexcept;
  // With the wall clock given (tests; seal() reads CLOCK_REALTIME).
  std::size_t seal(std::span<const std::uint8_t> ad, std::span<const std::uint8_t> plain,
                   std::span<std::uint8_t> out, std::uint32_t now_s) noexcept;
  std::uint64_t sender_tag() const noexcept { return tag_; }
  std::uint64_t incarnation() const noexcept { return incarnation_; }
  std::uint64_t sealed() const noexcept;

 private:
  SessionKey session_;
  std::uint64_t tag_, incarnation_;
  unsigned epoch_bits_;
  std::uint64_t id_;  // tells this sealer's keys apart in the threads' caches
  alignas(64) std::atomic<std::uint64_t> counter_{0};
};

std::uint64_t sender_tag_of(const Uuid& peer_id) noexcept;

// A whole keyed TOAST frame: header, the payload sealed with the header as
// associated data, CRC. Sized as encode_frame with kSealOverhead more
// payload. Never allocates.
std::expected<std::size_t, FrameError> encode_sealed_frame(const FrameHeader& header,
                                                           std::span<const std::uint8_t> payload,
                                                           Sealer& sealer,
                                                           std::span<std::uint8_t> out,
                                                           const CodecLimits& limits = {}) noexcept;

// Anti-replay for one sender incarnation: a sliding bitmap over counters
// (as IPsec and WireGuard). A counter is accepted once; one kWindow or more
// behind the newest is too old (a little less may be too: the window moves
// in 64-counter words, so it covers at least kWindow - 64).
class ReplayWindow {
 public:
  static constexpr std::uint64_t kWindow = 1024;
  // True (and marked seen) when `counter` was not seen and is not too old.
  // Call only after the frame authenticated.
  bool accept(std::uint64_t counter) noexcept;
  // Whether accept() would take it (no change): cheap check before decrypting.
  bool would_accept(std::uint64_t counter) const noexcept;
  std::uint64_t newest() const noexcept { return newest_; }

 private:
  std::uint64_t newest_ = 0;
  bool any_ = false;
  std::array<std::uint64_t, kWindow / 64> bits_{};
};

// The receiver side: authenticates sealed payloads and drops replays, with
// state only for senders whose frames authenticated and were fresh (a
// stranger's frame costs one decryption attempt, and at most one epoch key
// derivation, and leaves nothing behind). At most kMaxSenders sender
// incarnations are tracked; past that the one heard from longest ago is
// forgotten (counted). One thread (the receive thread).
class Opener {
 public:
  static constexpr std::size_t kMaxSenders = 256;
  struct Counts {
    std::uint64_t opened = 0;
    std::uint64_t malformed = 0;  // too short to be sealed
    std::uint64_t failed = 0;     // did not authenticate: wrong key, damaged, forged
    std::uint64_t replayed = 0;   // authenticated, but already seen or too old
    std::uint64_t bad_epoch = 0;  // an epoch older than the sender's previous one
    std::uint64_t stale = 0;      // a new sender run's frame sealed over kFreshSeconds away
    std::uint64_t evicted = 0;    // sender states forgotten to make room
  };
  explicit Opener(const SessionKey& session);
  ~Opener();
  Opener(const Opener&) = delete;
  Opener& operator=(const Opener&) = delete;

  // The plaintext size in `out`, or nothing (counted) when the payload is
  // not sealed with this session's key, or is a replay. Never allocates.
  std::optional<std::size_t> open(std::span<const std::uint8_t> ad,
                                  std::span<const std::uint8_t> sealed,
                                  std::span<std::uint8_t> out) noexcept;
  // With the wall clock given (tests; the above reads CLOCK_REALTIME).
  std::optional<std::size_t> open(std::span<const std::uint8_t> ad,
                                  std::span<const std::uint8_t> sealed, std::span<std::uint8_t> out,
                                  std::uint32_t now_s) noexcept;
  const Counts& counts() const noexcept { return counts_; }
  std::size_t senders() const noexcept;

 private:
  struct State;
  // now_s: the wall clock, or null to read it (only when a new sender run needs it).
  std::optional<std::size_t> open_checked(std::span<const std::uint8_t> ad,
                                          std::span<const std::uint8_t> sealed,
                                          std::span<std::uint8_t> out,
                                          const std::uint32_t* now_s) noexcept;
  // The epoch's key: from the cache, or derived into a scratch slot that
  // enters the cache only once a frame opened with it (so forged epochs
  // cost one derivation each but cannot push real keys out).
  const SessionKey& key_for(std::uint32_t epoch, bool& cached) noexcept;
  void remember(std::uint32_t epoch) noexcept;
  SessionKey session_;
  struct CachedKey {
    std::uint32_t epoch = 0;
    bool valid = false;
    std::uint64_t used = 0;
    SessionKey key;
  };
  std::array<CachedKey, 4> cache_{};
  SessionKey scratch_;
  State* state_;
  Counts counts_;
};

}  // namespace jamnet::protocol
