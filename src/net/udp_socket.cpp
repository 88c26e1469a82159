#include "jamnet/net/udp_socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "errno_text.hpp"

namespace jamnet::net {

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

UdpSocket::UdpSocket(UdpSocket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), local_(other.local_) {}

UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    local_ = other.local_;
  }
  return *this;
}

Result<UdpSocket> UdpSocket::bind(const Endpoint& local, const UdpOptions& opts) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(Errc::kIo, errno_text("socket"));
  UdpSocket sock(fd, local);
  const int one = 1;
  if (opts.reuse) {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (opts.kernel_timestamps) ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  if (opts.rcvbuf_bytes > 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &opts.rcvbuf_bytes, sizeof(int));
  if (opts.sndbuf_bytes > 0)
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &opts.sndbuf_bytes, sizeof(int));
  const sockaddr_in sa = local.to_sockaddr();
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    return make_error(Errc::kIo, "bind " + local.to_string() + ": " + std::strerror(errno));
  }
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  sock.local_ = Endpoint::from_sockaddr(bound);
  return sock;
}

Result<void> UdpSocket::join_multicast(const Endpoint& group, std::uint32_t iface) {
  ip_mreqn req{};
  req.imr_multiaddr.s_addr = htonl(group.addr);
  req.imr_address.s_addr = htonl(iface);
  req.imr_ifindex = 0;
  if (::setsockopt(fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &req, sizeof req) != 0) {
    return make_error(Errc::kIo,
                      "join multicast " + group.to_string() + ": " + std::strerror(errno));
  }
  return {};
}

Result<void> UdpSocket::set_multicast_out(std::uint32_t iface, int ttl, bool loop) {
  in_addr a{};
  a.s_addr = htonl(iface);
  if (::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a) != 0) {
    return make_error(Errc::kIo, errno_text("IP_MULTICAST_IF"));
  }
  const unsigned char t = static_cast<unsigned char>(ttl);
  const unsigned char l = loop ? 1 : 0;
  ::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_TTL, &t, sizeof t);
  ::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &l, sizeof l);
  return {};
}

bool UdpSocket::send_to(std::span<const std::uint8_t> data, const Endpoint& to) noexcept {
  const sockaddr_in sa = to.to_sockaddr();
  const ssize_t n = ::sendto(fd_, data.data(), data.size(), MSG_DONTWAIT,
                             reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  return n == static_cast<ssize_t>(data.size());
}

bool UdpSocket::receive(std::span<std::uint8_t> buf, Datagram& out) noexcept {
  sockaddr_in from{};
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr msg{};
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
  if (n < 0) return false;
  out.user_rx_ns = monotonic_ns();
  out.size = static_cast<std::size_t>(n);
  out.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  out.from = Endpoint::from_sockaddr(from);
  out.kernel_rx_realtime_ns = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts{};
      std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
      out.kernel_rx_realtime_ns = static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }
  }
  return true;
}

}  // namespace jamnet::net
