// Keyed sessions' primitives: sealing and opening frames, replays, wrong
// keys, nonces across restarts, epoch rotation, passphrase keys and session
// ids (protocol/security.hpp).
#include "jamnet/protocol/security.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <set>
#include <tuple>
#include <vector>

#include "jamnet/protocol/toast_frame.hpp"

namespace jamnet::protocol {
namespace {

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7);
  return v;
}

const Uuid kPeer = *Uuid::parse("11111111-2222-4333-8444-555555555555");

struct Sealed {
  std::vector<std::uint8_t> ad, payload;
};

Sealed seal_with(Sealer& s, std::size_t n = 256, std::uint8_t seed = 1) {
  Sealed f{bytes(kHeaderSize, 0xA0), {}};
  const auto plain = bytes(n, seed);
  f.payload.resize(n + kSealOverhead);
  EXPECT_EQ(s.seal(f.ad, plain, f.payload), n + kSealOverhead);
  return f;
}

TEST(Security, SealedPayloadOpensToThePlaintextAndHidesIt) {
  const auto key = SessionKey::random();
  const auto ad = bytes(kHeaderSize, 3);
  const auto plain = bytes(256, 9);
  const SealHeader h{.epoch = 7,
                     .sent_s = 1234,
                     .sender = 0x0102030405060708ull,
                     .incarnation = 42,
                     .counter = 99};
  std::vector<std::uint8_t> sealed(plain.size() + kSealOverhead);
  ASSERT_EQ(seal(key, h, ad, plain, sealed), sealed.size());
  // The ciphertext is not the plaintext.
  EXPECT_FALSE(std::equal(plain.begin(), plain.end(), sealed.begin() + kSealHeaderBytes));
  const auto peeked = peek_seal(sealed);
  ASSERT_TRUE(peeked);
  EXPECT_EQ(peeked->epoch, 7u);
  EXPECT_EQ(peeked->sent_s, 1234u);
  EXPECT_EQ(peeked->sender, h.sender);
  EXPECT_EQ(peeked->incarnation, 42u);
  EXPECT_EQ(peeked->counter, 99u);
  std::vector<std::uint8_t> out(plain.size());
  const auto n = open(key, ad, sealed, out);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, plain.size());
  EXPECT_EQ(out, plain);
  // Too small an output buffer is refused, not overrun.
  std::vector<std::uint8_t> small(10);
  EXPECT_EQ(seal(key, h, ad, plain, small), 0u);
  EXPECT_FALSE(open(key, ad, sealed, small));
  EXPECT_FALSE(peek_seal(std::span(sealed).first(kSealOverhead - 1)));
}

TEST(Security, EverySingleBitFlipOfAKeyedFrameIsRejected) {
  const auto key = SessionKey::random();
  Sealer sealer(key, kPeer, 1);
  const Sealed f = seal_with(sealer);
  std::vector<std::uint8_t> out(f.payload.size());
  std::size_t tried = 0, accepted = 0;
  // In the header (associated data) and everywhere in the sealed payload:
  // seal header, ciphertext and tag.
  for (int part = 0; part < 2; ++part) {
    const std::size_t len = part == 0 ? f.ad.size() : f.payload.size();
    for (std::size_t bit = 0; bit < len * 8; ++bit) {
      auto ad = f.ad;
      auto sealed = f.payload;
      auto& target = part == 0 ? ad : sealed;
      target[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      Opener opener(key);
      ++tried;
      if (opener.open(ad, sealed, out)) ++accepted;
      EXPECT_EQ(opener.senders(), 0u);  // nothing kept for a frame that failed
    }
  }
  EXPECT_EQ(tried, (kHeaderSize + 256 + kSealOverhead) * 8);
  EXPECT_EQ(accepted, 0u);
  // The untouched frame does open.
  Opener opener(key);
  EXPECT_TRUE(opener.open(f.ad, f.payload, out));
}

TEST(Security, AKeyedFrameDecodesAsTOASTAndItsHeaderIsAuthenticated) {
  const auto key = SessionKey::random();
  Sealer sealer(key, kPeer, 1);
  FrameHeader h;
  h.stream_type = StreamType::kMidi;
  h.sequence = 17;
  h.session_id = keyed_session_id(key, "band");
  const auto plain = bytes(256, 4);
  std::vector<std::uint8_t> datagram(encoded_size(plain.size() + kSealOverhead));
  const auto n = encode_sealed_frame(h, plain, sealer, datagram);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, datagram.size());
  const auto frame = decode_frame(datagram);  // an ordinary frame on the wire: CRC and all
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->header.sequence, 17u);
  std::vector<std::uint8_t> out(plain.size());
  Opener opener(key);
  const auto opened = opener.open(std::span(datagram).first(kHeaderSize), frame->payload, out);
  ASSERT_TRUE(opened);
  EXPECT_EQ(out, plain);
  // Someone on the path rewrites the sequence number and fixes the CRC: the
  // CRC passes, the seal does not.
  auto forged = datagram;
  forged[21] ^= 1;
  finish_frame(forged.data(), plain.size() + kSealOverhead);
  const auto f2 = decode_frame(forged);
  ASSERT_TRUE(f2);
  Opener fresh(key);
  EXPECT_FALSE(fresh.open(std::span(forged).first(kHeaderSize), f2->payload, out));
  // Too small a buffer or too large a payload is refused, not overrun.
  std::vector<std::uint8_t> small(100);
  EXPECT_EQ(encode_sealed_frame(h, plain, sealer, small).error(), FrameError::kBufferTooSmall);
  const auto huge = bytes(kDefaultMaxPayload, 1);
  std::vector<std::uint8_t> big(4096);
  EXPECT_EQ(encode_sealed_frame(h, huge, sealer, big).error(), FrameError::kPayloadTooLarge);
}

TEST(Security, AReplayedFrameIsRejectedAndCounted) {
  const auto key = SessionKey::random();
  Sealer sealer(key, kPeer, 1);
  Opener opener(key);
  std::vector<std::uint8_t> out(512);
  const Sealed a = seal_with(sealer, 100, 1);
  const Sealed b = seal_with(sealer, 100, 2);
  EXPECT_TRUE(opener.open(a.ad, a.payload, out));
  EXPECT_FALSE(opener.open(a.ad, a.payload, out));  // the same frame again
  EXPECT_TRUE(opener.open(b.ad, b.payload, out));
  EXPECT_FALSE(opener.open(b.ad, b.payload, out));
  EXPECT_FALSE(opener.open(a.ad, a.payload, out));
  EXPECT_EQ(opener.counts().opened, 2u);
  EXPECT_EQ(opener.counts().replayed, 3u);
  EXPECT_EQ(opener.counts().failed, 0u);
}

TEST(Security, AWrongKeyIsRejectedBeforeAnyStateIsMade) {
  Sealer sealer(SessionKey::random(), kPeer, 1);
  Opener opener(SessionKey::random());
  std::vector<std::uint8_t> out(512);
  for (int i = 0; i < 10; ++i) {
    const Sealed f = seal_with(sealer, 64, static_cast<std::uint8_t>(i));
    EXPECT_FALSE(opener.open(f.ad, f.payload, out));
  }
  EXPECT_EQ(opener.counts().failed, 10u);
  EXPECT_EQ(opener.counts().opened, 0u);
  EXPECT_EQ(opener.senders(), 0u);
  // Garbage too short to be sealed.
  const auto junk = bytes(kSealOverhead - 1, 5);
  EXPECT_FALSE(opener.open(bytes(kHeaderSize, 0), junk, out));
  EXPECT_EQ(opener.counts().malformed, 1u);
}

TEST(Security, NoNonceRepeatsAcrossARestart) {
  // Two runs of the same peer (same key, same id): the incarnation differs,
  // the counters both start at 0, and no nonce is used twice.
  const auto key = SessionKey::random();
  std::set<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>> nonces;
  std::size_t sealed = 0;
  std::vector<std::uint64_t> incarnations;
  for (int run = 0; run < 2; ++run) {
    // A fresh random incarnation per process start, as the peer makes one.
    std::uint64_t incarnation = 0;
    const auto r = SessionKey::random();
    std::memcpy(&incarnation, r.bytes.data(), sizeof incarnation);
    if (!incarnations.empty() && incarnations.back() == incarnation) ++incarnation;
    incarnations.push_back(incarnation);
    Sealer sealer(key, kPeer, incarnation);
    for (int i = 0; i < 1000; ++i) {
      const Sealed f = seal_with(sealer, 16, static_cast<std::uint8_t>(i));
      const auto h = peek_seal(f.payload);
      ASSERT_TRUE(h);
      nonces.insert({h->sender, h->incarnation, h->counter});
      ++sealed;
    }
  }
  EXPECT_EQ(nonces.size(), sealed);
  // And the receiver takes the restarted sender's counter 0 again.
  Opener opener(key);
  std::vector<std::uint8_t> out(64);
  Sealer first(key, kPeer, 100), second(key, kPeer, 101);
  const Sealed a = seal_with(first, 16), b = seal_with(second, 16);
  EXPECT_TRUE(opener.open(a.ad, a.payload, out));
  EXPECT_TRUE(opener.open(b.ad, b.payload, out));
}

TEST(Security, ARotationWhileSendingLosesNoBlock) {
  const auto key = SessionKey::random();
  Sealer sealer(key, kPeer, 1, /*epoch_bits=*/3);  // a new epoch key every 8 frames
  Opener opener(key);
  std::vector<Sealed> frames;
  std::set<std::uint32_t> epochs;
  for (int i = 0; i < 100; ++i) {
    frames.push_back(seal_with(sealer, 32, static_cast<std::uint8_t>(i)));
    epochs.insert(peek_seal(frames.back().payload)->epoch);
  }
  EXPECT_GE(epochs.size(), 12u);
  // Neighbours swapped (the network reorders across each rotation).
  for (std::size_t i = 0; i + 1 < frames.size(); i += 2) std::swap(frames[i], frames[i + 1]);
  std::vector<std::uint8_t> out(64);
  std::size_t opened = 0;
  for (const auto& f : frames) opened += opener.open(f.ad, f.payload, out).has_value();
  EXPECT_EQ(opened, frames.size());
  EXPECT_EQ(opener.counts().failed, 0u);
  // Epoch keys differ from each other and from the session key.
  EXPECT_NE(epoch_key(key, 0), epoch_key(key, 1));
  EXPECT_NE(epoch_key(key, 0), key);
}

TEST(Security, AnOldEpochIsRejectedWithoutDecryptingAndALaterOneIsTaken) {
  const auto key = SessionKey::random();
  Opener opener(key);
  std::vector<std::uint8_t> out(64);
  const auto ad = bytes(kHeaderSize, 0xA0);
  const auto plain = bytes(16, 1);
  const auto sealed_at = [&](std::uint32_t epoch, std::uint64_t counter) {
    std::vector<std::uint8_t> f(16 + kSealOverhead);
    seal(epoch_key(key, epoch),
         {.epoch = epoch,
          .sent_s = 1000,
          .sender = sender_tag_of(kPeer),
          .incarnation = 1,
          .counter = counter},
         ad, plain, f);
    return f;
  };
  ASSERT_TRUE(opener.open(ad, sealed_at(10, 80), out, 1000));
  // Five epochs on (the sender sealed whole epochs we never got): taken.
  EXPECT_TRUE(opener.open(ad, sealed_at(15, 120), out, 1000));
  // The previous epoch still is (reordered across the rotation)...
  EXPECT_TRUE(opener.open(ad, sealed_at(14, 119), out, 1000));
  // ...but one before it is not, and costs no decryption.
  EXPECT_FALSE(opener.open(ad, sealed_at(13, 110), out, 1000));
  EXPECT_EQ(opener.counts().bad_epoch, 1u);
  EXPECT_EQ(opener.counts().failed, 0u);
  // A forged epoch (garbage sealed under no key) fails and leaves the real
  // epochs' keys usable.
  auto forged = sealed_at(15, 121);
  forged[3] ^= 0x40;
  EXPECT_FALSE(opener.open(ad, forged, out, 1000));
  EXPECT_EQ(opener.counts().failed, 1u);
  EXPECT_TRUE(opener.open(ad, sealed_at(15, 122), out, 1000));
}

TEST(Security, FramesFromAnEarlierRunReplayedLaterAreRefused) {
  const auto key = SessionKey::random();
  Sealer sealer(key, kPeer, 7);
  const auto ad = bytes(kHeaderSize, 0xA0);
  const auto plain = bytes(32, 2);
  std::vector<std::uint8_t> recorded(32 + kSealOverhead), next(32 + kSealOverhead);
  ASSERT_EQ(sealer.seal(ad, plain, recorded, 50'000), recorded.size());
  ASSERT_EQ(sealer.seal(ad, plain, next, 50'001), next.size());
  std::vector<std::uint8_t> out(64);
  // A receiver that never heard this run (it restarted, or joined later)
  // gets the recording an hour on: refused before decrypting, counted.
  Opener later(key);
  EXPECT_FALSE(later.open(ad, recorded, out, 50'000 + 3600));
  EXPECT_EQ(later.counts().stale, 1u);
  EXPECT_EQ(later.counts().failed, 0u);
  EXPECT_EQ(later.senders(), 0u);
  // Within kFreshSeconds either way (clocks a little apart), taken.
  Opener now(key);
  EXPECT_TRUE(now.open(ad, recorded, out, 50'000 + kFreshSeconds));
  Opener behind(key);
  EXPECT_TRUE(behind.open(ad, recorded, out, 50'000 - kFreshSeconds));
  // Once a run is known its frames keep coming however long it plays.
  EXPECT_TRUE(now.open(ad, next, out, 50'000 + 100'000));
  // The sent time is authenticated: moved forward, the frame fails.
  auto moved = recorded;
  moved[7] ^= 0x10;
  Opener fresh(key);
  EXPECT_FALSE(fresh.open(ad, moved, out, 50'000 + 16));
  EXPECT_EQ(fresh.counts().failed, 1u);
}

TEST(Security, SenderStateIsCappedAndEvictionCounted) {
  const auto key = SessionKey::random();
  Opener opener(key);
  std::vector<std::uint8_t> out(64);
  for (std::uint64_t inc = 0; inc <= Opener::kMaxSenders; ++inc) {
    Sealer s(key, kPeer, inc + 1);
    const Sealed f = seal_with(s, 8);
    ASSERT_TRUE(opener.open(f.ad, f.payload, out));
  }
  EXPECT_EQ(opener.senders(), Opener::kMaxSenders);
  EXPECT_EQ(opener.counts().evicted, 1u);
}

TEST(Security, ReplayWindowTakesEachCounterOnceWithinTheWindow) {
  ReplayWindow w;
  EXPECT_TRUE(w.accept(5));
  EXPECT_FALSE(w.accept(5));
  EXPECT_TRUE(w.accept(3));  // late but new
  EXPECT_FALSE(w.accept(3));
  EXPECT_TRUE(w.accept(2000));
  EXPECT_FALSE(w.would_accept(5));  // now far too old
  EXPECT_TRUE(w.accept(2000 - 900));
  EXPECT_FALSE(w.accept(2000 - 900));
  EXPECT_FALSE(w.accept(2000 - ReplayWindow::kWindow));
  // A jump far ahead forgets the old bitmap, not the rule.
  EXPECT_TRUE(w.accept(1'000'000));
  EXPECT_TRUE(w.accept(1'000'000 - 1));
  EXPECT_FALSE(w.accept(1'000'000 - 1));
  EXPECT_FALSE(w.accept(2000));
  EXPECT_EQ(w.newest(), 1'000'000u);
}

TEST(Security, SamePassphraseAndNameGiveTheSameKeyAndId) {
  const auto a = key_from_passphrase("correct horse battery staple", "friday-jam");
  const auto b = key_from_passphrase("correct horse battery staple", "friday-jam");
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(keyed_session_id(*a, "friday-jam"), keyed_session_id(*b, "friday-jam"));
  const auto other_name = key_from_passphrase("correct horse battery staple", "saturday-jam");
  const auto other_pass = key_from_passphrase("correct horse battery stapler", "friday-jam");
  ASSERT_TRUE(other_name);
  ASSERT_TRUE(other_pass);
  EXPECT_NE(*a, *other_name);
  EXPECT_NE(*a, *other_pass);
  EXPECT_FALSE(key_from_passphrase("", "friday-jam"));
}

TEST(Security, SessionIdsFollowRfc9562AndKeyedOnesDependOnTheKey) {
  // RFC 9562 appendix A.4: UUIDv5 of "www.example.com" in the DNS namespace.
  const Uuid dns = *Uuid::parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  EXPECT_EQ(uuid_v5(dns, "www.example.com").to_string(), "2ed6657d-e927-568b-95e1-2665a8aea6a2");
  const Uuid open = open_session_id("friday-jam");
  EXPECT_EQ(open, open_session_id("friday-jam"));
  EXPECT_NE(open, open_session_id("friday-jam2"));
  EXPECT_EQ(open.bytes[6] >> 4, 5);
  const auto k1 = SessionKey::random(), k2 = SessionKey::random();
  const Uuid keyed = keyed_session_id(k1, "friday-jam");
  EXPECT_EQ(keyed.bytes[6] >> 4, 8);
  EXPECT_EQ(keyed.bytes[8] & 0xC0, 0x80);
  EXPECT_NE(keyed, keyed_session_id(k2, "friday-jam"));  // same name, other band
  EXPECT_NE(keyed, open);
}

}  // namespace
}  // namespace jamnet::protocol
