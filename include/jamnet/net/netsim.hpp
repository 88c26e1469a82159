// A UDP relay that makes a network worse on purpose (this kernel has no netem).
// Datagrams from the client arriving at `listen` go to `target` from a second,
// "upstream" socket; the target's replies to that socket go back to the client
// from `listen`. One client at a time: the most recent source seen on `listen`.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "jamnet/core/result.hpp"
#include "jamnet/net/endpoint.hpp"
#include "jamnet/net/impairment.hpp"

namespace jamnet::net {

struct NetsimConfig {
  Endpoint listen;
  Endpoint target;
  // Default: an ephemeral port on listen's address.
  std::optional<Endpoint> upstream_bind;
  Impairment forward;  // client -> target
  Impairment reverse;  // target -> client
  std::uint64_t seed = 1;
};

// Counts for one direction. `forwarded` counts datagrams sent on, duplicates
// included, so it equals what the receiving side should see.
struct NetsimDirectionStats {
  std::uint64_t received = 0;
  std::uint64_t forwarded = 0;
  std::uint64_t dropped_loss = 0;
  std::uint64_t dropped_queue = 0;  // rate limiter's queue (or the relay's own) was full
  std::uint64_t dropped_send = 0;   // the kernel refused the send, or no client yet to send to
  std::uint64_t duplicated = 0;
  std::uint64_t corrupted = 0;
  std::uint64_t reordered = 0;
  double delayed_ms_mean = 0.0;  // mean delay applied to forwarded datagrams
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
};

struct NetsimReport {
  Endpoint listen;
  Endpoint upstream;
  Endpoint target;
  std::optional<Endpoint> client;  // none until the first datagram arrives on listen
  std::uint64_t seed = 1;
  double elapsed_s = 0.0;
  std::uint64_t ignored = 0;  // arrived at upstream from someone other than the target
  NetsimDirectionStats forward;
  NetsimDirectionStats reverse;

  // One flat JSON object: "listen", "client", ..., "forward.received",
  // "reverse.bytes_out", ... (the names of NetsimDirectionStats' fields).
  nlohmann::ordered_json to_json_value() const;
  std::string to_json() const;  // to_json_value(), printed on one line
};

class Netsim {
 public:
  // Binds both sockets and starts the relay thread.
  static Result<std::unique_ptr<Netsim>> start(const NetsimConfig& config);
  ~Netsim();
  Netsim(const Netsim&) = delete;
  Netsim& operator=(const Netsim&) = delete;

  // Stops the thread; datagrams still held back are discarded. Idempotent.
  void stop();

  Endpoint listen_endpoint() const noexcept;    // as bound (the real port when 0 was asked)
  Endpoint upstream_endpoint() const noexcept;  // the source the target sees
  NetsimReport report() const;                  // thread-safe snapshot

 private:
  struct Impl;
  explicit Netsim(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace jamnet::net
