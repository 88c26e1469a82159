// A non-blocking IPv4 UDP socket (RAII). Used by the transport and by netsim.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "jamnet/core/clock.hpp"
#include "jamnet/core/result.hpp"
#include "jamnet/net/endpoint.hpp"

namespace jamnet::net {

struct UdpOptions {
  bool reuse = false;             // SO_REUSEADDR + SO_REUSEPORT (shared multicast port)
  bool kernel_timestamps = true;  // SO_TIMESTAMPNS on receive
  int rcvbuf_bytes = 1 << 20;
  int sndbuf_bytes = 1 << 20;
};

struct Datagram {
  std::size_t size = 0;
  Endpoint from;
  // Kernel receive time (CLOCK_REALTIME, SO_TIMESTAMPNS); 0 when the kernel gave none.
  Nanos kernel_rx_realtime_ns = 0;
  // CLOCK_MONOTONIC read right after the datagram was taken from the socket.
  Nanos user_rx_ns = 0;
  bool truncated = false;  // larger than the buffer: the tail was cut off
};

class UdpSocket {
 public:
  UdpSocket() = default;
  ~UdpSocket();
  UdpSocket(UdpSocket&& other) noexcept;
  UdpSocket& operator=(UdpSocket&& other) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  static Result<UdpSocket> bind(const Endpoint& local, const UdpOptions& opts = {});

  // Joins an IPv4 multicast group on the interface with address `iface`
  // (0 = kernel's choice). Outgoing multicast also leaves through `iface`:
  // on loopback both must be 127.0.0.1.
  Result<void> join_multicast(const Endpoint& group, std::uint32_t iface);
  Result<void> set_multicast_out(std::uint32_t iface, int ttl = 1, bool loop = true);

  // Returns false when the kernel would block or refused (counted by callers).
  bool send_to(std::span<const std::uint8_t> data, const Endpoint& to) noexcept;
  // Non-blocking; false when nothing is queued.
  bool receive(std::span<std::uint8_t> buf, Datagram& out) noexcept;

  int fd() const noexcept { return fd_; }
  Endpoint local() const noexcept { return local_; }
  bool valid() const noexcept { return fd_ >= 0; }

 private:
  explicit UdpSocket(int fd, Endpoint local) : fd_(fd), local_(local) {}
  int fd_ = -1;
  Endpoint local_;
};

}  // namespace jamnet::net
