#include "jamnet/peer/control_client.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <variant>

#include "jamnet/peer/sync_session.hpp"

namespace jamnet {

namespace ctl = protocol::control;

Result<ControlAnswer> send_control_request(PeerConfig cfg, const ctl::RequestMsg& req,
                                           std::optional<net::Endpoint> target, Nanos wait_ns,
                                           const std::function<bool()>& cancelled,
                                           const std::string& target_name) {
  auto stop_asked = [&] { return cancelled && cancelled(); };
  if (cfg.name.empty()) cfg.name = "jamnet-control";
  auto started = Peer::start(cfg);
  if (!started) return std::unexpected(started.error());
  Peer& p = **started;

  std::mutex mu;
  std::condition_variable cv;
  std::optional<ctl::ControlMessage> answer;
  p.registry().subscribe(
      {cfg.session, protocol::StreamType::kControl, 1}, [&](const net::ReceivedFrame& rx) {
        if (rx.frame.header.message_kind != kJsonControlKind) return;
        auto m = ctl::parse(
            {reinterpret_cast<const char*>(rx.frame.payload.data()), rx.frame.payload.size()});
        if (!m) return;
        const bool mine = (std::holds_alternative<ctl::ReplyMsg>(*m) &&
                           std::get<ctl::ReplyMsg>(*m).id == req.id) ||
                          std::holds_alternative<ctl::ErrorMsg>(*m);
        if (!mine) return;
        std::lock_guard lock(mu);
        if (!answer) answer = *m;
        cv.notify_all();
      });

  const Nanos deadline = monotonic_ns() + wait_ns;
  while (!target && monotonic_ns() < deadline && !stop_asked()) {
    for (const auto& info : p.peers()) {
      if (!target_name.empty() && info.name != target_name) continue;
      target = info.address;
      break;
    }
    if (!target) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!target) {
    p.stop();
    return make_error(Errc::kNotFound,
                      (target_name.empty() ? std::string("no peer of this session")
                                           : "no peer named '" + target_name + "'") +
                          " found in " + std::to_string(wait_ns / 1'000'000) + " ms");
  }

  const std::string text = ctl::serialize(req);
  net::SendOptions o;
  o.session = cfg.session;
  o.topic = {protocol::StreamType::kControl, 1};
  o.kind = kJsonControlKind;
  o.format = protocol::FormatType::kStandardJson;
  // The request is idempotent by id: resend until answered.
  std::unique_lock lock(mu);
  while (!answer && monotonic_ns() < deadline && !stop_asked()) {
    lock.unlock();
    (void)p.transport().send(o, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()},
                             *target);
    lock.lock();
    cv.wait_for(lock, std::chrono::milliseconds(250), [&] { return answer.has_value(); });
  }
  const auto got = answer;
  lock.unlock();
  p.stop();
  if (!got)
    return make_error(Errc::kTimeout, "no answer from " + target->to_string() + " in " +
                                          std::to_string(wait_ns / 1'000'000) + " ms");
  if (const auto* e = std::get_if<ctl::ErrorMsg>(&*got))
    return make_error(Errc::kInvalidArgument,
                      "the peer rejected the request: " + e->code + ": " + e->detail);
  return ControlAnswer{std::get<ctl::ReplyMsg>(*got), *target};
}

}  // namespace jamnet
