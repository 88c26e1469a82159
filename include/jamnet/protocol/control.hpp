// The JSON control protocol: transport commands and state, clock sync, peer
// hello (discovery), requests from the CLI, and errors. Every message is one
// JSON object, validated at the boundary against its JSON Schema
// (schemas/control/*.schema.json, embedded at build time, checked with
// valijson) before any field is read. docs/control.md is the spec.
//
// Rules every message follows:
// - "v" (integer) is the protocol's major version. A message with a "v" this
//   build does not speak (anything but kControlVersion) is rejected with reason
//   "version". A new minor feature never changes "v": it adds fields.
// - Unknown fields are ignored (forward compatibility): schemas allow
//   additional properties, and parsers read only the fields they know.
// - "type" names the message; an unknown type is rejected ("unknown_type").
// - Times are integers in nanoseconds of session time unless a field says so.
//
// Pure functions, no I/O: the parser is fuzzed (fuzz/control_fuzz.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "jamnet/core/result.hpp"

namespace jamnet::protocol::control {

inline constexpr int kControlVersion = 1;
inline constexpr std::size_t kMaxControlMessageBytes = 8192;

// ------------------------------------------------------------------ messages

enum class TransportCommand : std::uint8_t { kPlay, kStop, kPause, kRecord, kSeek, kTempo };
std::string_view to_string(TransportCommand c) noexcept;  // "PLAY", "STOP", ...
std::optional<TransportCommand> transport_command_from(std::string_view s) noexcept;

// "transport": a command for the whole session, to act at session time
// `timestamp` (001 §4.0.2, plus SEEK and TEMPO). Every field but the command's
// own is the sender's view when it sent it.
struct TransportMsg {
  TransportCommand command = TransportCommand::kPlay;
  std::int64_t timestamp = 0;  // session ns at which every peer acts
  double position_ms = 0;      // musical position in ms (SEEK: the target)
  double bpm = 120;            // TEMPO: the new tempo; others: current tempo
  std::array<int, 2> time_signature{4, 4};
  std::string master_peer;  // the sender's clock master (UUID text)
  std::string origin;       // peer that issued it (UUID text)
  std::uint64_t seq = 0;    // per-origin command counter, from 1
};

// "transport_state": the current state, sent on change, every second, and to
// a late joiner. The state is a pure function of the ordered command log;
// `anchor_*` pin position to session time.
struct TransportStateMsg {
  std::string state;                   // "stopped" | "playing" | "paused" | "recording"
  std::int64_t anchor_session_ns = 0;  // session time at which position == anchor_position_ms
  double anchor_position_ms = 0;
  double bpm = 120;
  std::array<int, 2> time_signature{4, 4};
  std::string last_origin;  // key of the last command applied (for ordering)
  std::uint64_t last_seq = 0;
  std::int64_t last_timestamp = 0;
  std::string master_peer;
};

// "sync_ping" / "sync_pong": NTP-style exchange. t1 is the requester's clock at
// send; t2/t3 are the responder's session clock at receive/send; the requester
// adds t4 at receive. All ns.
struct SyncPingMsg {
  std::string from;  // requester UUID text
  std::uint64_t id = 0;
  std::int64_t t1 = 0;
};
struct SyncPongMsg {
  std::string from;  // responder UUID text
  std::uint64_t id = 0;
  std::int64_t t1 = 0, t2 = 0, t3 = 0;
  bool master = false;  // responder is the clock master
};

// "sync_status": each peer's view, broadcast once a second; drives the
// deterministic master election (sync/election.hpp).
struct SyncStatusMsg {
  std::string from;
  int priority = 0;     // higher wins; configuration can force a master
  bool forced = false;  // configured as master
  bool master = false;  // claims to be the master now
  bool locked = false;
  double quality = 0;       // 0..1
  std::string master_peer;  // whom it follows (itself when master)
};

// "hello": discovery at the control level; a late joiner says hello and gets
// transport_state and sync_status back.
struct HelloMsg {
  std::string from;
  std::string name;
  std::string session;                    // UUID text
  std::vector<std::string> capabilities;  // "midi", "audio", "sync", "transport"
};

// "request": from a controller (the jamnet CLI) to one running peer, which
// issues the transport command into its session and answers with "reply".
struct RequestMsg {
  std::uint64_t id = 0;
  std::string action;         // "play" | "stop" | "pause" | "record" | "tempo" | "seek" | "status" | "mix"
  std::optional<double> bpm;  // tempo
  std::optional<std::string> bbt;       // seek: "BAR.BEAT.TICK", 1-based bar and beat
  std::optional<double> position_ms;    // seek: alternative to bbt
  std::optional<std::int64_t> lead_ns;  // act this far ahead (default: the peer's)
  // "mix": one remote source of the asked peer's personal mix (MixSetting).
  std::optional<std::string> source;  // peer name or id
  std::optional<double> gain_db;
  std::optional<bool> mute;
  std::optional<double> pan;
};
struct ReplyMsg {
  std::uint64_t id = 0;
  bool ok = false;
  std::string detail;                         // human-readable
  std::optional<std::int64_t> at_session_ns;  // when the command acts
  std::string status_json;  // action "status": the peer's status object, serialized
};

// "error": a peer tells the sender why it rejected a message.
struct ErrorMsg {
  std::string code;  // a reason from below
  std::string detail;
  std::string ref_type;  // type of the rejected message when known
};

using ControlMessage = std::variant<TransportMsg, TransportStateMsg, SyncPingMsg, SyncPongMsg,
                                    SyncStatusMsg, HelloMsg, RequestMsg, ReplyMsg, ErrorMsg>;
std::string_view type_name(const ControlMessage& m) noexcept;  // "transport", ...

// ------------------------------------------------------------ parse / write

// Why a message was rejected. Stable names: they are counted and logged.
enum class Reject : std::uint8_t {
  kTooLarge,     // "too_large": over kMaxControlMessageBytes
  kNotJson,      // "not_json": not a JSON object
  kVersion,      // "version": missing or unsupported "v"
  kUnknownType,  // "unknown_type": missing or unknown "type"
  kSchema,       // "schema": failed its schema (detail names the field)
  kCount
};
inline constexpr std::size_t kRejectKinds = static_cast<std::size_t>(Reject::kCount);
std::string_view to_string(Reject r) noexcept;

struct ParseError {
  Reject reason = Reject::kNotJson;
  std::string detail;  // for people: "schema: /bpm: value 0 is below the minimum 1"
};

// Parses and validates one message. Never throws, never crashes on any input.
std::expected<ControlMessage, ParseError> parse(std::string_view json);
// Serializes with "v" and "type"; the result parses back to an equal message.
std::string serialize(const ControlMessage& m);

// Validation alone (for the bench key sync.schema_validate_ns): validates an
// already-parsed document against the schema of `type`. Returns an empty
// string when valid, else the first error.
class SchemaSet {
 public:
  static const SchemaSet& instance();  // the embedded schemas, parsed once (thread-safe)
  // `json` must be a JSON object; returns nullopt when valid, else the error.
  std::optional<std::string> validate(std::string_view type, std::string_view json) const;
  std::vector<std::string> types() const;
  ~SchemaSet();
  SchemaSet(const SchemaSet&) = delete;
  SchemaSet& operator=(const SchemaSet&) = delete;

 private:
  SchemaSet();
  struct Impl;
  Impl* impl_;
};

// ------------------------------------------------------------------- router

// Dispatches validated messages to one handler per type; counts every
// delivered message per type and every rejection per reason. Not thread-safe:
// one thread (the one that owns the socket's handler) calls dispatch().
struct RouterCounts {
  std::array<std::uint64_t, kRejectKinds> rejected{};
  std::uint64_t delivered = 0;
  std::uint64_t unhandled = 0;  // valid, but no handler registered for the type
};

class BasicRouter {
 public:
  using Handler = std::function<void(const ControlMessage&)>;
  // Rejections are also passed here (for logging at a rate limit, and for
  // answering with an ErrorMsg); may be empty.
  using RejectHandler = std::function<void(const ParseError&)>;

  void on(std::string_view type, Handler h);
  void on_reject(RejectHandler h) { on_reject_ = std::move(h); }
  // Parses, validates, dispatches. Returns the parse error when rejected.
  std::optional<ParseError> dispatch(std::string_view json);
  const RouterCounts& counts() const noexcept { return counts_; }

 private:
  std::vector<std::pair<std::string, Handler>> handlers_;
  RejectHandler on_reject_;
  RouterCounts counts_;
};

}  // namespace jamnet::protocol::control
