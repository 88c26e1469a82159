#include "jamnet/sync/clock_drift_arbiter.hpp"

#include <algorithm>
#include <vector>

#include "jamnet/sync/election.hpp"

namespace jamnet::sync {

namespace ctl = protocol::control;

namespace {
using Outbox = std::vector<std::pair<std::optional<Uuid>, ctl::ControlMessage>>;
constexpr std::size_t kMaxOutstanding = 256;
constexpr Nanos kPingExpiry = 2'000'000'000;
}  // namespace

ClockDriftArbiter::ClockDriftArbiter(ArbiterConfig config, const ClockSource& local, Send send)
    : config_(std::move(config)),
      local_(local),
      send_(std::move(send)),
      session_(config_.session),
      estimator_(config_.estimator) {
  config_.sync_hz = std::clamp(config_.sync_hz, 1.0, 100.0);
  started_ = local_.now_ns();
  next_ping_ = started_;
  next_status_ = started_;
  // A lone peer's timeline is its own clock until it hears a master.
  session_.reset_to_local(started_);
}

void ClockDriftArbiter::tick() {
  Outbox out;
  {
    std::lock_guard lock(mu_);
    const Nanos now = local_.now_ns();
    for (auto it = candidates_.begin(); it != candidates_.end();) {
      if (now - it->second.last_heard > config_.peer_timeout_ns)
        it = candidates_.erase(it);
      else
        ++it;
    }
    elect_locked(now);
    if (!is_master_ && master_ && now >= next_ping_) {
      const auto period = static_cast<Nanos>(1e9 / config_.sync_hz);
      next_ping_ += period;
      if (next_ping_ <= now) next_ping_ = now + period;
      // Forget pings whose pong never came (lost), and bound the table.
      std::erase_if(outstanding_, [now](const auto& kv) { return now - kv.second > kPingExpiry; });
      if (outstanding_.size() < kMaxOutstanding) {
        ctl::SyncPingMsg ping;
        ping.from = config_.self.to_string();
        ping.id = ++ping_id_;
        ping.t1 = local_.now_ns();
        outstanding_[ping.id] = ping.t1;
        ++counters_.pings_sent;
        out.emplace_back(master_, std::move(ping));
      }
    }
    if (now >= next_status_) {
      next_status_ = now + config_.status_interval_ns;
      ctl::SyncStatusMsg st;
      st.from = config_.self.to_string();
      st.priority = config_.priority;
      st.forced = config_.force_master;
      st.master = is_master_;
      st.locked = is_master_ || session_.locked();
      st.quality = status_locked().quality;
      st.master_peer = master_ ? master_->to_string() : std::string{};
      out.emplace_back(std::nullopt, std::move(st));
    }
  }
  for (const auto& [to, msg] : out) send_(to, msg);
}

void ClockDriftArbiter::elect_locked(Nanos now) {
  std::vector<MasterCandidate>& cs = election_;
  cs.clear();
  // While it listens, a new peer follows only a peer that is master already
  // (or configured to be): two newcomers must not follow each other.
  const bool listening = !config_.force_master && now - started_ < config_.listen_ns;
  if (!listening) cs.push_back({config_.self, config_.priority, config_.force_master, is_master_});
  for (const auto& [id, c] : candidates_) {
    if (!listening || c.claims || c.forced) cs.push_back({id, c.priority, c.forced, c.claims});
  }
  counters_.candidates = candidates_.size() + 1;
  const auto winner = elect_master(cs);
  if (winner == master_ && (winner == config_.self) == is_master_) return;
  if (winner != master_) ++counters_.master_changes;
  next_status_ = now;  // tell the others at once
  if (winner && *winner == config_.self) {
    // Becoming master: keep the rate we had (followed or our own), so the
    // timeline carries on from where it is without a jump.
    session_.hold(now);
    is_master_ = true;
  } else {
    is_master_ = false;
    next_ping_ = now;
  }
  master_ = winner;
  estimator_.reset();
  outstanding_.clear();
}

void ClockDriftArbiter::on_ping(const ctl::SyncPingMsg& m, Nanos local_rx) {
  auto from = Uuid::parse(m.from);
  if (!from || *from == config_.self) return;
  ctl::SyncPongMsg pong;
  pong.from = config_.self.to_string();
  pong.id = m.id;
  pong.t1 = m.t1;
  pong.t2 = session_.session_at(local_rx);
  {
    std::lock_guard lock(mu_);
    pong.master = is_master_;
  }
  pong.t3 = session_.session_at(local_.now_ns());
  send_(*from, pong);
}

void ClockDriftArbiter::on_pong(const ctl::SyncPongMsg& m, Nanos local_rx) {
  auto from = Uuid::parse(m.from);
  if (!from) return;
  std::lock_guard lock(mu_);
  auto it = outstanding_.find(m.id);
  if (it == outstanding_.end() || it->second != m.t1) {
    ++counters_.samples_rejected;  // unknown, duplicate or expired
    return;
  }
  outstanding_.erase(it);
  ++counters_.pongs_received;
  if (is_master_ || !master_ || *from != *master_) return;  // a pong from a former master
  // Until our master says it is master, its timeline may still move (it may
  // be following someone else): such samples would poison the fit.
  if (!m.master) return;
  const SyncSample s{m.t1, m.t2, m.t3, local_rx};
  if (!estimator_.add(s)) {
    ++counters_.samples_rejected;
    return;
  }
  const auto est = estimator_.estimate();
  if (!est) return;
  const bool was_locked = session_.locked();
  session_.steer(local_.now_ns(), *est);
  ++counters_.pongs_used;
  if (!was_locked && session_.locked() && counters_.locked_after_ns < 0)
    counters_.locked_after_ns = local_rx - started_;
}

void ClockDriftArbiter::on_status(const ctl::SyncStatusMsg& m) {
  auto from = Uuid::parse(m.from);
  if (!from || *from == config_.self) return;
  std::lock_guard lock(mu_);
  auto [it, fresh] = candidates_.try_emplace(*from);
  auto& c = it->second;
  // A peer we did not know: answer with our status at once, so a newcomer
  // hears who is master well inside its listening time.
  if (fresh) next_status_ = local_.now_ns();
  c.priority = m.priority;
  c.forced = m.forced;
  c.claims = m.master;
  c.locked = m.locked;
  c.last_heard = local_.now_ns();
}

void ClockDriftArbiter::peer_left(const Uuid& id) {
  std::lock_guard lock(mu_);
  candidates_.erase(id);
  elect_locked(local_.now_ns());
}

ArbiterStatus ClockDriftArbiter::status() const {
  std::lock_guard lock(mu_);
  return status_locked();
}

ArbiterStatus ClockDriftArbiter::status_locked() const {
  ArbiterStatus s = counters_;
  s.master = master_;
  s.is_master = is_master_;
  if (is_master_) {
    s.quality = 1.0;
  } else if (const auto est = estimator_.estimate()) {
    s.quality = est->quality * (session_.locked() ? 1.0 : 0.5);
    s.rtt_min_ns = static_cast<double>(est->min_delay_ns);
  }
  const Nanos now = local_.now_ns();
  s.locked = s.is_master || session_.locked();
  s.offset_ns = static_cast<double>(session_.session_at(now) - now);
  s.drift_ppm = s.is_master ? (session_.state().rate - 1.0) * 1e6 : session_.drift_ppm();
  s.last_error_ns = session_.last_error_ns();
  s.steps = session_.steps();
  s.steps_while_locked = session_.steps_while_locked();
  return s;
}

}  // namespace jamnet::sync
