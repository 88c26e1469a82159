#include "jamnet/protocol/security.hpp"

#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "jamnet/core/fixed_map.hpp"
#include "jamnet/protocol/byte_order.hpp"

namespace jamnet::protocol {

namespace {

// libsodium must be initialised once before use; it is thread-safe after.
bool sodium_ready() noexcept {
  static const bool ready = ::sodium_init() >= 0;
  return ready;
}

constexpr char kEpochContext[crypto_kdf_CONTEXTBYTES + 1] = "JAMNETep";
constexpr std::string_view kSaltLabel = "jamnet-salt-v1:";
constexpr std::string_view kIdLabel = "jamnet-session-id-v1:";

static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == kNonceBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == kTagBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == kKeyBytes);
static_assert(crypto_kdf_KEYBYTES == kKeyBytes);

void mark_version(Uuid& id, std::uint8_t version) noexcept {
  id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | (version << 4));
  id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
}

}  // namespace

// JAMNet's namespace for session names (a fixed random UUID; never change it:
// every member must map a name to the same id).
const Uuid kSessionNamespace = *Uuid::parse("3f1c9d2e-7b4a-4e61-9a0d-5c8e2b7f4a10");

SessionKey::~SessionKey() {
  ::sodium_memzero(bytes.data(), bytes.size());
}

void wipe(std::span<std::uint8_t> b) noexcept {
  ::sodium_memzero(b.data(), b.size());
}

void wipe(std::string& s) noexcept {
  ::sodium_memzero(s.data(), s.size());
  s.clear();
}

SessionKey SessionKey::random() {
  if (!sodium_ready()) {
    std::fputs("jamnet: libsodium could not be initialised; no random key can be made\n", stderr);
    std::abort();
  }
  SessionKey k;
  ::randombytes_buf(k.bytes.data(), k.bytes.size());  // aborts itself if the OS has no CSPRNG
  return k;
}

Result<SessionKey> key_from_passphrase(std::string_view passphrase, std::string_view session_name) {
  if (!sodium_ready()) return make_error(Errc::kIo, "libsodium could not be initialised");
  if (passphrase.empty()) return make_error(Errc::kInvalidArgument, "the passphrase is empty");
  std::array<std::uint8_t, crypto_pwhash_SALTBYTES> salt{};
  const std::string label = std::string(kSaltLabel) + std::string(session_name);
  ::crypto_generichash(salt.data(), salt.size(),
                       reinterpret_cast<const unsigned char*>(label.data()), label.size(), nullptr,
                       0);
  SessionKey k;
  if (::crypto_pwhash(k.bytes.data(), k.bytes.size(), passphrase.data(), passphrase.size(),
                      salt.data(), kPassphraseOpsLimit, kPassphraseMemLimit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
    return make_error(Errc::kIo, "deriving the key from the passphrase needs " +
                                     std::to_string(kPassphraseMemLimit >> 20) +
                                     " MiB of memory, which this machine did not give");
  return k;
}

Uuid uuid_v5(const Uuid& ns, std::string_view name) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  EVP_MD_CTX* ctx = ::EVP_MD_CTX_new();
  ::EVP_DigestInit_ex(ctx, ::EVP_sha1(), nullptr);
  ::EVP_DigestUpdate(ctx, ns.bytes.data(), ns.bytes.size());
  ::EVP_DigestUpdate(ctx, name.data(), name.size());
  ::EVP_DigestFinal_ex(ctx, digest.data(), &len);
  ::EVP_MD_CTX_free(ctx);
  Uuid id;
  std::memcpy(id.bytes.data(), digest.data(), id.bytes.size());
  mark_version(id, 5);
  return id;
}

Uuid open_session_id(std::string_view name) {
  return uuid_v5(kSessionNamespace, name);
}

Uuid keyed_session_id(const SessionKey& key, std::string_view name) {
  (void)sodium_ready();
  const std::string label = std::string(kIdLabel) + std::string(name);
  Uuid id;
  ::crypto_generichash(id.bytes.data(), id.bytes.size(),
                       reinterpret_cast<const unsigned char*>(label.data()), label.size(),
                       key.bytes.data(), key.bytes.size());
  mark_version(id, 8);
  return id;
}

std::array<std::uint8_t, 16> mac16(const SessionKey& secret,
                                   std::span<const std::uint8_t> msg) noexcept {
  (void)sodium_ready();
  std::array<std::uint8_t, 16> out{};
  ::crypto_generichash(out.data(), out.size(), msg.data(), msg.size(), secret.bytes.data(),
                       secret.bytes.size());
  return out;
}

SessionKey epoch_key(const SessionKey& session, std::uint32_t epoch) {
  (void)sodium_ready();
  SessionKey k;
  ::crypto_kdf_derive_from_key(k.bytes.data(), k.bytes.size(), epoch, kEpochContext,
                               session.bytes.data());
  return k;
}

std::optional<SealHeader> peek_seal(std::span<const std::uint8_t> sealed) noexcept {
  if (sealed.size() < kSealOverhead) return std::nullopt;
  SealHeader h;
  h.epoch = load_be32(sealed.data());
  h.sent_s = load_be32(sealed.data() + 4);
  h.sender = load_be64(sealed.data() + 8);
  h.incarnation = load_be64(sealed.data() + 16);
  h.counter = load_be64(sealed.data() + 24);
  return h;
}

namespace {
// The associated data: the frame header, then the seal's epoch and sent time.
std::size_t full_ad(std::span<const std::uint8_t> ad, const std::uint8_t* seal_prefix,
                    std::array<std::uint8_t, kMaxAd + 8>& buf) noexcept {
  if (ad.size() > kMaxAd) return 0;
  std::memcpy(buf.data(), ad.data(), ad.size());
  std::memcpy(buf.data() + ad.size(), seal_prefix, 8);
  return ad.size() + 8;
}
}  // namespace

std::size_t seal(const SessionKey& key, const SealHeader& h, std::span<const std::uint8_t> ad,
                 std::span<const std::uint8_t> plain, std::span<std::uint8_t> out) noexcept {
  if (out.size() < plain.size() + kSealOverhead || ad.size() > kMaxAd || !sodium_ready()) return 0;
  std::uint8_t* p = out.data();
  store_be32(p, h.epoch);
  store_be32(p + 4, h.sent_s);
  store_be64(p + 8, h.sender);
  store_be64(p + 16, h.incarnation);
  store_be64(p + 24, h.counter);
  std::array<std::uint8_t, kMaxAd + 8> adb;
  const std::size_t adn = full_ad(ad, p, adb);
  unsigned long long tag_len = 0;
  ::crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
      p + kSealHeaderBytes, p + kSealHeaderBytes + plain.size(), &tag_len, plain.data(),
      plain.size(), adb.data(), adn, nullptr, p + 8, key.bytes.data());
  return plain.size() + kSealOverhead;
}

std::optional<std::size_t> open(const SessionKey& key, std::span<const std::uint8_t> ad,
                                std::span<const std::uint8_t> sealed,
                                std::span<std::uint8_t> out) noexcept {
  if (sealed.size() < kSealOverhead || !sodium_ready()) return std::nullopt;
  const std::size_t n = sealed.size() - kSealOverhead;
  if (out.size() < n || ad.size() > kMaxAd) return std::nullopt;
  const std::uint8_t* p = sealed.data();
  std::array<std::uint8_t, kMaxAd + 8> adb;
  const std::size_t adn = full_ad(ad, p, adb);
  if (::crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
          out.data(), nullptr, p + kSealHeaderBytes, n, p + kSealHeaderBytes + n, adb.data(), adn,
          p + 8, key.bytes.data()) != 0)
    return std::nullopt;
  return n;
}

std::uint64_t sender_tag_of(const Uuid& peer_id) noexcept {
  return load_be64(peer_id.bytes.data());
}

// ---- Sealer ------------------------------------------------------------------

namespace {
std::atomic<std::uint64_t> g_sealer_ids{1};
struct ThreadEpoch {
  std::uint64_t sealer = 0;  // 0: nothing cached
  std::uint32_t epoch = 0;
  SessionKey key;
};
thread_local ThreadEpoch t_epoch;
}  // namespace

Sealer::Sealer(const SessionKey& session, const Uuid& peer_id, std::uint64_t incarnation,
               unsigned epoch_bits)
    : session_(session),
      tag_(sender_tag_of(peer_id)),
      incarnation_(incarnation),
      epoch_bits_(std::min(epoch_bits, 63u)),
      id_(g_sealer_ids.fetch_add(1, std::memory_order_relaxed)) {}

namespace {
std::uint32_t wall_seconds() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(ts.tv_sec));
}
}  // namespace

std::size_t Sealer::seal(std::span<const std::uint8_t> ad, std::span<const std::uint8_t> plain,
                         std::span<std::uint8_t> out) noexcept {
  return seal(ad, plain, out, wall_seconds());
}

std::size_t Sealer::seal(std::span<const std::uint8_t> ad, std::span<const std::uint8_t> plain,
                         std::span<std::uint8_t> out, std::uint32_t now_s) noexcept {
  if (out.size() < plain.size() + kSealOverhead) return 0;
  SealHeader h;
  h.sent_s = now_s;
  h.sender = tag_;
  h.incarnation = incarnation_;
  h.counter = counter_.fetch_add(1, std::memory_order_relaxed);
  h.epoch = static_cast<std::uint32_t>(h.counter >> epoch_bits_);
  if (t_epoch.sealer != id_ || t_epoch.epoch != h.epoch) {
    t_epoch.key = epoch_key(session_, h.epoch);
    t_epoch.epoch = h.epoch;
    t_epoch.sealer = id_;
  }
  return protocol::seal(t_epoch.key, h, ad, plain, out);
}

std::uint64_t Sealer::sealed() const noexcept {
  return counter_.load(std::memory_order_relaxed);
}

std::expected<std::size_t, FrameError> encode_sealed_frame(const FrameHeader& h,
                                                           std::span<const std::uint8_t> payload,
                                                           Sealer& sealer,
                                                           std::span<std::uint8_t> out,
                                                           const CodecLimits& limits) noexcept {
  const std::size_t sealed = payload.size() + kSealOverhead;
  const std::size_t total = encoded_size(sealed);
  if (total > std::max(limits.max_datagram, kFrameOverhead) || total > kAbsoluteMaxDatagram)
    return std::unexpected(FrameError::kPayloadTooLarge);
  if (out.size() < total) return std::unexpected(FrameError::kBufferTooSmall);
  encode_header(h, sealed, out.data());
  if (sealer.seal(out.first(kHeaderSize), payload, out.subspan(kHeaderSize, sealed)) != sealed)
    return std::unexpected(FrameError::kBufferTooSmall);
  finish_frame(out.data(), sealed);
  return total;
}

// ---- ReplayWindow ------------------------------------------------------------

bool ReplayWindow::would_accept(std::uint64_t c) const noexcept {
  if (!any_ || c > newest_) return true;
  // By words: the bitmap's oldest word may share its slot with the newest's.
  if (newest_ / 64 - c / 64 >= bits_.size()) return false;
  return (bits_[(c / 64) % bits_.size()] >> (c % 64) & 1) == 0;
}

bool ReplayWindow::accept(std::uint64_t c) noexcept {
  if (!would_accept(c)) return false;
  if (!any_ || c > newest_) {
    // Clear the words the window slides over, up to the whole window.
    const std::uint64_t from = any_ ? newest_ / 64 + 1 : c / 64;
    const std::uint64_t to = c / 64;
    for (std::uint64_t w = from; w <= to && w - from < bits_.size(); ++w)
      bits_[w % bits_.size()] = 0;
    if (!any_) bits_.fill(0);
    newest_ = c;
    any_ = true;
  }
  bits_[(c / 64) % bits_.size()] |= std::uint64_t{1} << (c % 64);
  return true;
}

// ---- Opener ------------------------------------------------------------------

namespace {
struct SenderKey {
  std::uint64_t sender = 0, incarnation = 0;
  friend bool operator==(const SenderKey&, const SenderKey&) = default;
};
struct SenderKeyHash {
  std::size_t operator()(const SenderKey& k) const noexcept {
    return static_cast<std::size_t>(k.sender * 0x9E3779B97F4A7C15ull ^ k.incarnation);
  }
};
}  // namespace

struct Opener::State {
  struct Sender {
    ReplayWindow window;
    std::uint32_t epoch = 0;
    std::uint64_t last_used = 0;  // Opener's open() count when it last authenticated
  };
  FixedMap<SenderKey, Sender, SenderKeyHash> senders{kMaxSenders};
  std::uint64_t clock = 0;
};

Opener::Opener(const SessionKey& session) : session_(session), state_(new State) {}
Opener::~Opener() {
  delete state_;
}

std::size_t Opener::senders() const noexcept {
  return state_->senders.size();
}

const SessionKey& Opener::key_for(std::uint32_t epoch, bool& cached) noexcept {
  for (auto& c : cache_)
    if (c.valid && c.epoch == epoch) {
      c.used = state_->clock;
      cached = true;
      return c.key;
    }
  cached = false;
  scratch_ = epoch_key(session_, epoch);
  return scratch_;
}

void Opener::remember(std::uint32_t epoch) noexcept {
  CachedKey* slot = &cache_[0];
  for (auto& c : cache_) {
    if (!c.valid) {
      slot = &c;
      break;
    }
    if (c.used < slot->used) slot = &c;
  }
  slot->key = scratch_;
  slot->epoch = epoch;
  slot->valid = true;
  slot->used = state_->clock;
}

std::optional<std::size_t> Opener::open(std::span<const std::uint8_t> ad,
                                        std::span<const std::uint8_t> sealed,
                                        std::span<std::uint8_t> out) noexcept {
  return open_checked(ad, sealed, out, nullptr);  // the clock is read only for a new sender run
}

std::optional<std::size_t> Opener::open(std::span<const std::uint8_t> ad,
                                        std::span<const std::uint8_t> sealed,
                                        std::span<std::uint8_t> out, std::uint32_t now_s) noexcept {
  return open_checked(ad, sealed, out, &now_s);
}

std::optional<std::size_t> Opener::open_checked(std::span<const std::uint8_t> ad,
                                                std::span<const std::uint8_t> sealed,
                                                std::span<std::uint8_t> out,
                                                const std::uint32_t* now_s) noexcept {
  const auto h = peek_seal(sealed);
  if (!h) {
    ++counts_.malformed;
    return std::nullopt;
  }
  const SenderKey key{h->sender, h->incarnation};
  auto* known = state_->senders.find(key);
  if (known != nullptr) {
    // Before any work: a replay or an epoch before the sender's previous
    // one is dropped. Later epochs are taken (the sender may have sealed a
    // whole epoch's frames we never got). In 64 bits: no wrap.
    if (std::uint64_t{h->epoch} + 1 < known->epoch) {
      ++counts_.bad_epoch;
      return std::nullopt;
    }
    if (!known->window.would_accept(h->counter)) {
      ++counts_.replayed;
      return std::nullopt;
    }
  } else {
    // A sender run we have no state for: only a frame sealed about now (an
    // old recording replayed is refused before it costs a decryption).
    const std::uint32_t now = now_s != nullptr ? *now_s : wall_seconds();
    const auto age = static_cast<std::int32_t>(now - h->sent_s);  // mod 2^32
    if (age > static_cast<std::int32_t>(kFreshSeconds) ||
        age < -static_cast<std::int32_t>(kFreshSeconds)) {
      ++counts_.stale;
      return std::nullopt;
    }
  }
  bool cached = false;
  const SessionKey& k = key_for(h->epoch, cached);
  const auto n = protocol::open(k, ad, sealed, out);
  if (!n) {
    ++counts_.failed;
    return std::nullopt;
  }
  if (!cached) remember(h->epoch);
  // Authenticated: now, and only now, the sender may have state here.
  if (known == nullptr) {
    if (state_->senders.full()) {
      state_->senders.evict_sampled(32, [](const State::Sender& s) { return s.last_used; });
      ++counts_.evicted;
    }
    known = state_->senders.try_emplace(key);
    if (known == nullptr) {  // cannot happen after an eviction; never accept unguarded
      ++counts_.failed;
      return std::nullopt;
    }
  }
  if (!known->window.accept(h->counter)) {
    ++counts_.replayed;
    return std::nullopt;
  }
  known->epoch = std::max(known->epoch, h->epoch);
  known->last_used = ++state_->clock;
  ++counts_.opened;
  return n;
}

}  // namespace jamnet::protocol
