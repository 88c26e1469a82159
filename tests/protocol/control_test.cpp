#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "jamnet/protocol/control.hpp"

namespace jamnet::protocol::control {
namespace detail {
extern const std::pair<std::string_view, std::string_view> kEmbeddedSchemas[];
extern const std::size_t kEmbeddedSchemaCount;
}  // namespace detail

namespace {

constexpr const char* kA = "01234567-89ab-cdef-0123-456789abcdef";
constexpr const char* kB = "fedcba98-7654-3210-fedc-ba9876543210";
constexpr const char* kS = "00112233-4455-6677-8899-aabbccddeeff";

// ---------------------------------------------------------------- helpers

auto fields(const TransportMsg& m) {
  return std::tie(m.command, m.timestamp, m.position_ms, m.bpm, m.time_signature, m.master_peer,
                  m.origin, m.seq);
}
auto fields(const TransportStateMsg& m) {
  return std::tie(m.state, m.anchor_session_ns, m.anchor_position_ms, m.bpm, m.time_signature,
                  m.last_origin, m.last_seq, m.last_timestamp, m.master_peer);
}
auto fields(const SyncPingMsg& m) {
  return std::tie(m.from, m.id, m.t1);
}
auto fields(const SyncPongMsg& m) {
  return std::tie(m.from, m.id, m.t1, m.t2, m.t3, m.master);
}
auto fields(const SyncStatusMsg& m) {
  return std::tie(m.from, m.priority, m.forced, m.master, m.locked, m.quality, m.master_peer);
}
auto fields(const HelloMsg& m) {
  return std::tie(m.from, m.name, m.session, m.capabilities);
}
auto fields(const RequestMsg& m) {
  return std::tie(m.id, m.action, m.bpm, m.bbt, m.position_ms, m.lead_ns);
}
auto fields(const ReplyMsg& m) {
  return std::tie(m.id, m.ok, m.detail, m.at_session_ns, m.status_json);
}
auto fields(const ErrorMsg& m) {
  return std::tie(m.code, m.detail, m.ref_type);
}

// Field-by-field equality of two messages (the structs have no operator==).
::testing::AssertionResult Same(const ControlMessage& a, const ControlMessage& b) {
  if (a.index() != b.index()) {
    return ::testing::AssertionFailure()
           << "types differ: " << type_name(a) << " vs " << type_name(b);
  }
  const bool eq = std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        return fields(x) == fields(std::get<T>(b));
      },
      a);
  if (eq) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "fields differ:\n  " << serialize(a) << "\n  " << serialize(b);
}

template <class T>
T parse_as(std::string_view text) {
  auto r = parse(text);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().detail) << "\n  input: " << text;
  if (!r) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*r)) << "got " << type_name(*r);
  return std::holds_alternative<T>(*r) ? std::get<T>(*r) : T{};
}

ParseError parse_error(std::string_view text) {
  auto r = parse(text);
  EXPECT_FALSE(r.has_value()) << "accepted: " << text;
  return r ? ParseError{Reject::kCount, "accepted"} : r.error();
}

std::string with(nlohmann::json j, const std::string& key, nlohmann::json value) {
  j[key] = std::move(value);
  return j.dump();
}

std::string without(nlohmann::json j, const std::string& key) {
  j.erase(key);
  return j.dump();
}

nlohmann::json transport_json() {
  return {{"v", 1},
          {"type", "transport"},
          {"command", "PLAY"},
          {"timestamp", 1'500'000'000},
          {"position_ms", 2000.5},
          {"bpm", 128.0},
          {"time_signature", {3, 8}},
          {"master_peer", kB},
          {"origin", kA},
          {"seq", 7}};
}

// One valid message of each type, as a peer would write it.
std::vector<std::pair<std::string, std::string>> samples() {
  using nlohmann::json;
  std::vector<std::pair<std::string, std::string>> s;
  s.emplace_back("transport", transport_json().dump());
  s.emplace_back("transport_state", json{{"v", 1},
                                         {"type", "transport_state"},
                                         {"state", "playing"},
                                         {"anchor_session_ns", -42},
                                         {"anchor_position_ms", 1000.25},
                                         {"bpm", 90},
                                         {"time_signature", {7, 8}},
                                         {"last_origin", kA},
                                         {"last_seq", 3},
                                         {"last_timestamp", 99},
                                         {"master_peer", kB}}
                                        .dump());
  s.emplace_back(
      "sync_ping",
      json{{"v", 1}, {"type", "sync_ping"}, {"from", kA}, {"id", 5}, {"t1", 123}}.dump());
  s.emplace_back("sync_pong", json{{"v", 1},
                                   {"type", "sync_pong"},
                                   {"from", kB},
                                   {"id", 5},
                                   {"t1", 123},
                                   {"t2", 200},
                                   {"t3", 210},
                                   {"master", true}}
                                  .dump());
  s.emplace_back("sync_status", json{{"v", 1},
                                     {"type", "sync_status"},
                                     {"from", kA},
                                     {"priority", 10},
                                     {"forced", false},
                                     {"master", true},
                                     {"locked", true},
                                     {"quality", 0.875},
                                     {"master_peer", kA}}
                                    .dump());
  s.emplace_back("hello", json{{"v", 1},
                               {"type", "hello"},
                               {"from", kA},
                               {"name", "keys"},
                               {"session", kS},
                               {"capabilities", {"midi", "audio", "sync", "transport"}}}
                              .dump());
  s.emplace_back("request", json{{"v", 1},
                                 {"type", "request"},
                                 {"id", 17},
                                 {"action", "seek"},
                                 {"bbt", "5.2.480"},
                                 {"lead_ns", 200'000'000}}
                                .dump());
  s.emplace_back("reply", json{{"v", 1},
                               {"type", "reply"},
                               {"id", 17},
                               {"ok", true},
                               {"detail", "seek to 5.2.480"},
                               {"at_session_ns", 123456789},
                               {"status_json", R"({"state":"playing"})"}}
                              .dump());
  s.emplace_back("error", json{{"v", 1},
                               {"type", "error"},
                               {"code", "schema"},
                               {"detail", "/bpm: too low"},
                               {"ref_type", "transport"}}
                              .dump());
  return s;
}

// ---------------------------------------------------------------- parsing

TEST(ControlParse, TransportFields) {
  const auto m = parse_as<TransportMsg>(transport_json().dump());
  EXPECT_EQ(m.command, TransportCommand::kPlay);
  EXPECT_EQ(m.timestamp, 1'500'000'000);
  EXPECT_DOUBLE_EQ(m.position_ms, 2000.5);
  EXPECT_DOUBLE_EQ(m.bpm, 128.0);
  EXPECT_EQ(m.time_signature, (std::array<int, 2>{3, 8}));
  EXPECT_EQ(m.master_peer, kB);
  EXPECT_EQ(m.origin, kA);
  EXPECT_EQ(m.seq, 7u);
}

TEST(ControlParse, TransportOptionalFieldsTakeDefaults) {
  const std::string text = std::string(R"({"v":1,"type":"transport","command":"STOP",)") +
                           R"("timestamp":-5,"origin":")" + kA + R"(","seq":0})";
  const auto m = parse_as<TransportMsg>(text);
  EXPECT_EQ(m.command, TransportCommand::kStop);
  EXPECT_EQ(m.timestamp, -5);
  EXPECT_DOUBLE_EQ(m.bpm, 120.0);
  EXPECT_EQ(m.time_signature, (std::array<int, 2>{4, 4}));
  EXPECT_EQ(m.master_peer, "");
  EXPECT_EQ(m.seq, 0u);
}

TEST(ControlParse, EveryCommandName) {
  for (auto c : {TransportCommand::kPlay, TransportCommand::kStop, TransportCommand::kPause,
                 TransportCommand::kRecord, TransportCommand::kSeek, TransportCommand::kTempo}) {
    EXPECT_EQ(transport_command_from(to_string(c)), c);
    const auto m = parse_as<TransportMsg>(with(transport_json(), "command", to_string(c)));
    EXPECT_EQ(m.command, c);
  }
  EXPECT_EQ(to_string(TransportCommand::kRecord), "RECORD");
  EXPECT_FALSE(transport_command_from("play").has_value());  // case matters
  EXPECT_FALSE(transport_command_from("").has_value());
}

TEST(ControlParse, TransportStateFields) {
  const auto m = parse_as<TransportStateMsg>(samples()[1].second);
  EXPECT_EQ(m.state, "playing");
  EXPECT_EQ(m.anchor_session_ns, -42);
  EXPECT_DOUBLE_EQ(m.anchor_position_ms, 1000.25);
  EXPECT_DOUBLE_EQ(m.bpm, 90.0);  // an integer in the JSON
  EXPECT_EQ(m.time_signature, (std::array<int, 2>{7, 8}));
  EXPECT_EQ(m.last_origin, kA);
  EXPECT_EQ(m.last_seq, 3u);
  EXPECT_EQ(m.last_timestamp, 99);
  EXPECT_EQ(m.master_peer, kB);
}

TEST(ControlParse, SyncFields) {
  const auto ping = parse_as<SyncPingMsg>(samples()[2].second);
  EXPECT_EQ(ping.from, kA);
  EXPECT_EQ(ping.id, 5u);
  EXPECT_EQ(ping.t1, 123);
  const auto pong = parse_as<SyncPongMsg>(samples()[3].second);
  EXPECT_EQ(pong.from, kB);
  EXPECT_EQ(pong.id, 5u);
  EXPECT_EQ(pong.t1, 123);
  EXPECT_EQ(pong.t2, 200);
  EXPECT_EQ(pong.t3, 210);
  EXPECT_TRUE(pong.master);
  const auto st = parse_as<SyncStatusMsg>(samples()[4].second);
  EXPECT_EQ(st.from, kA);
  EXPECT_EQ(st.priority, 10);
  EXPECT_FALSE(st.forced);
  EXPECT_TRUE(st.master);
  EXPECT_TRUE(st.locked);
  EXPECT_DOUBLE_EQ(st.quality, 0.875);
  EXPECT_EQ(st.master_peer, kA);
}

TEST(ControlParse, HelloRequestReplyErrorFields) {
  const auto h = parse_as<HelloMsg>(samples()[5].second);
  EXPECT_EQ(h.from, kA);
  EXPECT_EQ(h.name, "keys");
  EXPECT_EQ(h.session, kS);
  EXPECT_EQ(h.capabilities, (std::vector<std::string>{"midi", "audio", "sync", "transport"}));

  const auto rq = parse_as<RequestMsg>(samples()[6].second);
  EXPECT_EQ(rq.id, 17u);
  EXPECT_EQ(rq.action, "seek");
  EXPECT_EQ(rq.bbt, "5.2.480");
  EXPECT_FALSE(rq.bpm.has_value());
  EXPECT_FALSE(rq.position_ms.has_value());
  EXPECT_EQ(rq.lead_ns, 200'000'000);

  const auto rp = parse_as<ReplyMsg>(samples()[7].second);
  EXPECT_EQ(rp.id, 17u);
  EXPECT_TRUE(rp.ok);
  EXPECT_EQ(rp.detail, "seek to 5.2.480");
  EXPECT_EQ(rp.at_session_ns, 123456789);
  EXPECT_EQ(rp.status_json, R"({"state":"playing"})");

  const auto e = parse_as<ErrorMsg>(samples()[8].second);
  EXPECT_EQ(e.code, "schema");
  EXPECT_EQ(e.detail, "/bpm: too low");
  EXPECT_EQ(e.ref_type, "transport");
}

TEST(ControlParse, ExtremeIntegersSurvive) {
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  auto j = transport_json();
  j["timestamp"] = kMin;
  j["seq"] = kMax;
  auto m = parse_as<TransportMsg>(j.dump());
  EXPECT_EQ(m.timestamp, kMin);
  EXPECT_EQ(m.seq, static_cast<std::uint64_t>(kMax));
  j["timestamp"] = kMax;
  m = parse_as<TransportMsg>(j.dump());
  EXPECT_EQ(m.timestamp, kMax);
}

TEST(ControlParse, UnknownFieldsAreAcceptedAndIgnored) {
  auto j = transport_json();
  j["future_field"] = {{"nested", {1, 2, 3}}, {"huge", 18446744073709551615ull}};
  j["another"] = "x";
  j["big_number"] = 1e300;
  const auto base = parse_as<TransportMsg>(transport_json().dump());
  auto r = parse(j.dump());
  ASSERT_TRUE(r.has_value()) << r.error().detail;
  EXPECT_TRUE(Same(*r, base));
  const std::string out = serialize(*r);
  EXPECT_EQ(out.find("future_field"), std::string::npos);
  EXPECT_EQ(out.find("another"), std::string::npos);
  // And in the other messages too (every schema allows additional properties).
  for (const auto& [type, text] : samples()) {
    auto doc = nlohmann::json::parse(text);
    doc["x_unknown"] = {{"a", nullptr}};
    EXPECT_TRUE(parse(doc.dump()).has_value()) << type;
  }
}

TEST(ControlParse, WhitespaceAndKeyOrderDoNotMatter) {
  const std::string text = std::string(" {\n \"seq\" : 1 , \"origin\" : \"") + kA +
                           "\" , \"timestamp\" : 10 ,\t\"command\" : \"PAUSE\", \"type\" : "
                           "\"transport\", \"v\" : 1 }\n";
  const auto m = parse_as<TransportMsg>(text);
  EXPECT_EQ(m.command, TransportCommand::kPause);
  EXPECT_EQ(m.timestamp, 10);
}

// ---------------------------------------------------------------- rejects

TEST(ControlReject, ReasonNamesAreStable) {
  EXPECT_EQ(to_string(Reject::kTooLarge), "too_large");
  EXPECT_EQ(to_string(Reject::kNotJson), "not_json");
  EXPECT_EQ(to_string(Reject::kVersion), "version");
  EXPECT_EQ(to_string(Reject::kUnknownType), "unknown_type");
  EXPECT_EQ(to_string(Reject::kSchema), "schema");
}

TEST(ControlReject, TooLargeIsCheckedFirst) {
  // Valid JSON padded with an unknown field: accepted up to the limit, not one byte over.
  auto j = transport_json();
  j["pad"] = "";
  const std::size_t base = j.dump().size();
  j["pad"] = std::string(kMaxControlMessageBytes - base, 'x');
  ASSERT_EQ(j.dump().size(), kMaxControlMessageBytes);
  EXPECT_TRUE(parse(j.dump()).has_value());
  j["pad"] = std::string(kMaxControlMessageBytes - base + 1, 'x');
  EXPECT_EQ(parse_error(j.dump()).reason, Reject::kTooLarge);
  // Before anything else: not even JSON, but too large.
  const ParseError e = parse_error(std::string(kMaxControlMessageBytes + 1, '{'));
  EXPECT_EQ(e.reason, Reject::kTooLarge);
  EXPECT_NE(e.detail.find("8193"), std::string::npos) << e.detail;
}

TEST(ControlReject, NotJson) {
  for (const char* text : {"", " ", "nope", "{", R"({"v":1,)", R"({"v":1} trailing)", "{'v':1}",
                           R"({"v":1,"type":"hello",})", "/* c */ {}", "\xff\xfe"}) {
    EXPECT_EQ(parse_error(text).reason, Reject::kNotJson) << text;
  }
  // Valid JSON, but not an object.
  for (const char* text :
       {"[]", R"([{"v":1,"type":"hello"}])", "1", "\"transport\"", "null", "true"}) {
    const ParseError e = parse_error(text);
    EXPECT_EQ(e.reason, Reject::kNotJson) << text;
    EXPECT_NE(e.detail.find("object"), std::string::npos) << e.detail;
  }
  // Invalid UTF-8 inside a string.
  EXPECT_EQ(parse_error("{\"v\":1,\"type\":\"hello\",\"name\":\"\xc3\x28\"}").reason,
            Reject::kNotJson);
}

TEST(ControlReject, Version) {
  const auto j = transport_json();
  ParseError e = parse_error(without(j, "v"));
  EXPECT_EQ(e.reason, Reject::kVersion);
  EXPECT_NE(e.detail.find("missing"), std::string::npos) << e.detail;
  e = parse_error(with(j, "v", 2));
  EXPECT_EQ(e.reason, Reject::kVersion);
  EXPECT_NE(e.detail.find("2"), std::string::npos) << e.detail;  // says what it got
  e = parse_error(with(j, "v", 0));
  EXPECT_EQ(e.reason, Reject::kVersion);
  EXPECT_EQ(parse_error(with(j, "v", -1)).reason, Reject::kVersion);
  EXPECT_EQ(parse_error(with(j, "v", 18446744073709551615ull)).reason, Reject::kVersion);
  EXPECT_EQ(parse_error(with(j, "v", "1")).reason, Reject::kVersion);
  EXPECT_EQ(parse_error(with(j, "v", 1.0)).reason, Reject::kVersion);
  EXPECT_EQ(parse_error(with(j, "v", nullptr)).reason, Reject::kVersion);
  // The version is checked before the type: an unknown type at v=2 is a version reject.
  auto k = j;
  k["type"] = "future_thing";
  EXPECT_EQ(parse_error(with(k, "v", 2)).reason, Reject::kVersion);
}

TEST(ControlReject, UnknownType) {
  const auto j = transport_json();
  ParseError e = parse_error(with(j, "type", "teleport"));
  EXPECT_EQ(e.reason, Reject::kUnknownType);
  EXPECT_NE(e.detail.find("teleport"), std::string::npos) << e.detail;
  EXPECT_EQ(parse_error(without(j, "type")).reason, Reject::kUnknownType);
  EXPECT_EQ(parse_error(with(j, "type", 3)).reason, Reject::kUnknownType);
  EXPECT_EQ(parse_error(with(j, "type", "")).reason, Reject::kUnknownType);
  EXPECT_EQ(parse_error(with(j, "type", "Transport")).reason, Reject::kUnknownType);
  EXPECT_EQ(parse_error(R"({"v":1})").reason, Reject::kUnknownType);
}

TEST(ControlReject, SchemaViolationsNameTheField) {
  const auto j = transport_json();
  struct Case {
    std::string text;
    std::string field;  // must appear in the detail
  };
  const std::vector<Case> cases = {
      {with(j, "bpm", 0), "/bpm"},
      {with(j, "bpm", 19.99), "/bpm"},
      {with(j, "bpm", 1000), "/bpm"},
      {with(j, "bpm", "120"), "/bpm"},
      {with(j, "command", "JUMP"), "/command"},
      {with(j, "command", "play"), "/command"},
      {with(j, "command", 1), "/command"},
      {with(j, "timestamp", "123"), "/timestamp"},
      {with(j, "timestamp", 1.5), "/timestamp"},
      {with(j, "timestamp", 1e30), "/timestamp"},
      {with(j, "timestamp", 18446744073709551615ull), "/timestamp"},
      {with(j, "seq", -1), "/seq"},
      {with(j, "seq", 18446744073709551615ull), "/seq"},
      {with(j, "seq", true), "/seq"},
      {with(j, "origin", "not-a-uuid"), "/origin"},
      {with(j, "origin", std::string(kA) + "0"), "/origin"},
      {with(j, "origin", ""), "/origin"},
      {with(j, "master_peer", "someone"), "/master_peer"},
      {with(j, "time_signature", {4, 3}), "/time_signature/1"},
      {with(j, "time_signature", {0, 4}), "/time_signature/0"},
      {with(j, "time_signature", {65, 4}), "/time_signature/0"},
      {with(j, "time_signature", {4}), "/time_signature"},
      {with(j, "time_signature", {4, 4, 4}), "/time_signature"},
      {with(j, "time_signature", "4/4"), "/time_signature"},
      {with(j, "position_ms", -1), "/position_ms"},
      {with(j, "position_ms", 1e13), "/position_ms"},
      {without(j, "origin"), "origin"},
      {without(j, "seq"), "seq"},
  };
  for (const auto& c : cases) {
    const ParseError e = parse_error(c.text);
    EXPECT_EQ(e.reason, Reject::kSchema) << c.text << " -> " << e.detail;
    EXPECT_NE(e.detail.find(c.field), std::string::npos) << c.text << " -> " << e.detail;
  }
}

TEST(ControlReject, NonFiniteNumbersAreRejected) {
  // A literal that overflows a double never becomes infinity: nlohmann
  // rejects it while parsing, and the schema bounds would catch it after.
  std::string text = transport_json().dump();
  const auto at = text.find("128.0");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(parse_error(std::string(text).replace(at, 5, "1e400")).reason, Reject::kNotJson);
  EXPECT_EQ(parse_error(std::string(text).replace(at, 5, "-1e400")).reason, Reject::kNotJson);
  EXPECT_EQ(parse_error(std::string(text).replace(at, 5, "1e308")).reason, Reject::kSchema);
  auto st = nlohmann::json::parse(samples()[4].second);
  st["quality"] = 1.5;
  EXPECT_EQ(parse_error(st.dump()).reason, Reject::kSchema);
}

TEST(ControlReject, ConditionalRequirements) {
  // SEEK needs a position, TEMPO a bpm; a request to seek needs bbt or position_ms.
  auto seek = with(transport_json(), "command", "SEEK");
  EXPECT_TRUE(parse(seek).has_value());
  EXPECT_EQ(parse_error(without(nlohmann::json::parse(seek), "position_ms")).reason,
            Reject::kSchema);
  auto tempo = with(transport_json(), "command", "TEMPO");
  EXPECT_TRUE(parse(tempo).has_value());
  EXPECT_EQ(parse_error(without(nlohmann::json::parse(tempo), "bpm")).reason, Reject::kSchema);
  // PLAY without position or bpm is fine.
  auto play = nlohmann::json::parse(with(transport_json(), "command", "PLAY"));
  play.erase("position_ms");
  play.erase("bpm");
  EXPECT_TRUE(parse(play.dump()).has_value());

  const nlohmann::json rq = {{"v", 1}, {"type", "request"}, {"id", 1}, {"action", "seek"}};
  EXPECT_EQ(parse_error(rq.dump()).reason, Reject::kSchema);
  EXPECT_TRUE(parse(with(rq, "bbt", "3.1.0")).has_value());
  EXPECT_TRUE(parse(with(rq, "bbt", "3")).has_value());
  EXPECT_TRUE(parse(with(rq, "position_ms", 1500.0)).has_value());
  EXPECT_EQ(parse_error(with(rq, "bbt", "0.1.0")).reason, Reject::kSchema);
  EXPECT_EQ(parse_error(with(rq, "bbt", "3.1.0.5")).reason, Reject::kSchema);
  EXPECT_EQ(parse_error(with(rq, "bbt", "three")).reason, Reject::kSchema);
  auto tq = rq;
  tq["action"] = "tempo";
  EXPECT_EQ(parse_error(tq.dump()).reason, Reject::kSchema);
  EXPECT_TRUE(parse(with(tq, "bpm", 140)).has_value());
  EXPECT_EQ(parse_error(with(tq, "bpm", 10)).reason, Reject::kSchema);
  EXPECT_EQ(parse_error(with(rq, "action", "dance")).reason, Reject::kSchema);
  EXPECT_EQ(parse_error(with(rq, "id", -3)).reason, Reject::kSchema);
  auto status = rq;
  status["action"] = "status";
  EXPECT_TRUE(parse(status.dump()).has_value());
  EXPECT_EQ(parse_error(with(status, "lead_ns", -1)).reason, Reject::kSchema);
  EXPECT_EQ(parse_error(with(status, "lead_ns", 0.5)).reason, Reject::kSchema);
}

TEST(ControlReject, OtherTypesCheckTheirFields) {
  using nlohmann::json;
  const auto s = samples();
  auto doc = [&](std::size_t i) { return json::parse(s[i].second); };
  const std::vector<std::string> bad = {
      with(doc(1), "state", "rewinding"),
      with(doc(1), "anchor_session_ns", "0"),
      with(doc(1), "last_seq", -1),
      without(doc(1), "time_signature"),
      with(doc(2), "from", 42),
      with(doc(2), "id", -1),
      without(doc(2), "t1"),
      with(doc(3), "t2", "200"),
      with(doc(3), "master", "yes"),
      with(doc(3), "master", 1),
      with(doc(4), "priority", 2147483648LL),
      with(doc(4), "priority", 1.5),
      with(doc(4), "quality", -0.1),
      with(doc(4), "locked", nullptr),
      with(doc(5), "session", "not a uuid"),
      with(doc(5), "capabilities", "midi"),
      with(doc(5), "capabilities", {1, 2}),
      with(doc(5), "capabilities", {"MIDI"}),
      with(doc(5), "name", std::string(65, 'n')),
      with(doc(7), "ok", "true"),
      with(doc(7), "at_session_ns", 1.25),
      without(doc(7), "ok"),
      with(doc(7), "status_json", std::string(7169, 's')),
      with(doc(8), "code", std::string(65, 'c')),
      without(doc(8), "code"),
  };
  for (const auto& text : bad) EXPECT_EQ(parse_error(text).reason, Reject::kSchema) << text;
}

TEST(ControlReject, HostileInputNeverCrashes) {
  std::vector<std::string> inputs = {
      std::string(4000, '[') + std::string(4000, ']'),
      R"({"v":1,"type":"hello","from":")" + std::string(kA) + R"(","session":")" + kS +
          R"(","x":)" + std::string(3000, '[') + std::string(3000, ']') + "}",
      std::string("{\"v\":1,\"type\":\"hello\"\0}", 23),
      R"({"v":1,"type":"transport","timestamp":-9223372036854775809})",
      R"({"v":1e999,"type":"transport"})",
      R"({"v":1,"type":"request","id":1,"action":"seek","position_ms":-0.0})",
      R"({"v":1,"type":"hello","from":"\u0000","session":"\ud800"})",
      R"({"v":1,"v":2,"type":"error","code":"x"})",
  };
  for (const auto& in : inputs) {
    EXPECT_NO_THROW({
      auto r = parse(in);
      if (r) (void)serialize(*r);
    });
  }
}

// ---------------------------------------------------------------- writing

TEST(ControlSerialize, EnvelopeComesFirstAndIsCompact) {
  for (const auto& [type, text] : samples()) {
    auto r = parse(text);
    ASSERT_TRUE(r.has_value()) << type << ": " << r.error().detail;
    EXPECT_EQ(type_name(*r), type);
    const std::string out = serialize(*r);
    EXPECT_EQ(out.rfind(R"({"v":1,"type":")" + type + "\"", 0), 0u) << out;
    EXPECT_EQ(out, nlohmann::ordered_json::parse(out).dump()) << out;  // compact
    EXPECT_EQ(out.find('\n'), std::string::npos) << out;
  }
}

TEST(ControlSerialize, EmptyOptionalsAreOmitted) {
  RequestMsg rq;
  rq.id = 3;
  rq.action = "status";
  const auto out = nlohmann::json::parse(serialize(rq));
  EXPECT_FALSE(out.contains("bpm"));
  EXPECT_FALSE(out.contains("bbt"));
  EXPECT_FALSE(out.contains("position_ms"));
  EXPECT_FALSE(out.contains("lead_ns"));
  ReplyMsg rp;
  EXPECT_FALSE(nlohmann::json::parse(serialize(rp)).contains("at_session_ns"));
  rp.at_session_ns = 0;  // present, even when zero
  EXPECT_EQ(nlohmann::json::parse(serialize(rp)).at("at_session_ns"), 0);
}

// Every type with every field set to something other than its default.
std::vector<ControlMessage> non_default_messages() {
  std::vector<ControlMessage> v;
  TransportMsg t;
  t.command = TransportCommand::kTempo;
  t.timestamp = -1234567890123;
  t.position_ms = 98765.4321;
  t.bpm = 133.3333333333333;
  t.time_signature = {7, 16};
  t.master_peer = kB;
  t.origin = kA;
  t.seq = 9'000'000'000'000'000'000ull;
  v.emplace_back(t);
  TransportStateMsg s;
  s.state = "recording";
  s.anchor_session_ns = std::numeric_limits<std::int64_t>::min();
  s.anchor_position_ms = 0.1;
  s.bpm = 20;
  s.time_signature = {64, 32};
  s.last_origin = kA;
  s.last_seq = 42;
  s.last_timestamp = std::numeric_limits<std::int64_t>::max();
  s.master_peer = kB;
  v.emplace_back(s);
  v.emplace_back(SyncPingMsg{kA, 77, 1'700'000'000'000'000'000});
  v.emplace_back(SyncPongMsg{kB, 78, -1, -2, -3, true});
  v.emplace_back(SyncStatusMsg{kA, -7, true, true, true, 0.3333333333333333, kB});
  v.emplace_back(HelloMsg{kA, "drums \"Ünïcødé\" \t\\", kS, {"midi", "sync"}});
  RequestMsg rq;
  rq.id = 5;
  rq.action = "tempo";
  rq.bpm = 99.5;
  rq.bbt = "12.3.456";
  rq.position_ms = 1e11;
  rq.lead_ns = 123'456'789;
  v.emplace_back(rq);
  ReplyMsg rp;
  rp.id = 5;
  rp.ok = true;
  rp.detail = "tempo 99.5 at \"now\"";
  rp.at_session_ns = -99;
  rp.status_json = R"({"peers":[{"id":"x","rtt_ms":1.5}],"state":"playing"})";
  v.emplace_back(rp);
  v.emplace_back(ErrorMsg{"unknown_type", "unknown type \"teleport\"", "teleport"});
  return v;
}

TEST(ControlSerialize, RoundTripsEveryType) {
  const auto msgs = non_default_messages();
  ASSERT_EQ(msgs.size(), std::variant_size_v<ControlMessage>);
  for (const auto& m : msgs) {
    const std::string text = serialize(m);
    auto back = parse(text);
    ASSERT_TRUE(back.has_value()) << text << "\n -> " << back.error().detail;
    EXPECT_TRUE(Same(m, *back)) << text;
    EXPECT_EQ(serialize(*back), text);  // the text is canonical
  }
  // And text -> message -> text -> message for the hand-written samples.
  for (const auto& [type, text] : samples()) {
    auto a = parse(text);
    ASSERT_TRUE(a.has_value()) << type;
    auto b = parse(serialize(*a));
    ASSERT_TRUE(b.has_value()) << type << ": " << b.error().detail;
    EXPECT_TRUE(Same(*a, *b)) << type;
  }
}

TEST(ControlSerialize, DefaultConstructedMessagesThatFitTheirSchemaRoundTrip) {
  // The defaults of the structs whose required fields have no format to fail.
  for (const ControlMessage& m : {ControlMessage{RequestMsg{0, "play", {}, {}, {}, {}}},
                                  ControlMessage{ReplyMsg{}}, ControlMessage{ErrorMsg{}}}) {
    auto back = parse(serialize(m));
    ASSERT_TRUE(back.has_value()) << serialize(m) << " -> " << back.error().detail;
    EXPECT_TRUE(Same(m, *back));
  }
}

TEST(ControlSerialize, InvalidUtf8InCodeIsReplacedNotThrown) {
  ErrorMsg e{"schema", std::string("bad \xff byte"), "x"};
  std::string out;
  EXPECT_NO_THROW(out = serialize(e));
  auto back = parse(out);
  ASSERT_TRUE(back.has_value()) << out;
  EXPECT_EQ(std::get<ErrorMsg>(*back).detail, "bad \xEF\xBF\xBD byte");
}

// ---------------------------------------------------------------- router

TEST(ControlRouter, DispatchesAndCounts) {
  BasicRouter router;
  std::vector<TransportMsg> transports;
  int pings = 0;
  std::vector<ParseError> rejects;
  router.on("transport",
            [&](const ControlMessage& m) { transports.push_back(std::get<TransportMsg>(m)); });
  router.on("sync_ping", [&](const ControlMessage&) { ++pings; });
  router.on_reject([&](const ParseError& e) { rejects.push_back(e); });

  const auto s = samples();
  EXPECT_FALSE(router.dispatch(s[0].second).has_value());  // transport
  EXPECT_FALSE(router.dispatch(s[2].second).has_value());  // sync_ping
  EXPECT_FALSE(router.dispatch(s[2].second).has_value());
  EXPECT_FALSE(router.dispatch(s[5].second).has_value());  // hello: nobody listens
  ASSERT_EQ(transports.size(), 1u);
  EXPECT_EQ(transports[0].seq, 7u);
  EXPECT_EQ(pings, 2);
  EXPECT_EQ(router.counts().delivered, 3u);
  EXPECT_EQ(router.counts().unhandled, 1u);

  const auto r1 = router.dispatch("[1,2]");
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(r1->reason, Reject::kNotJson);
  EXPECT_EQ(router.dispatch(with(transport_json(), "v", 2))->reason, Reject::kVersion);
  EXPECT_EQ(router.dispatch(with(transport_json(), "v", 3))->reason, Reject::kVersion);
  EXPECT_EQ(router.dispatch(with(transport_json(), "type", "x"))->reason, Reject::kUnknownType);
  EXPECT_EQ(router.dispatch(with(transport_json(), "bpm", 0))->reason, Reject::kSchema);
  EXPECT_EQ(router.dispatch(std::string(kMaxControlMessageBytes + 1, ' '))->reason,
            Reject::kTooLarge);
  const auto& c = router.counts();
  EXPECT_EQ(c.rejected[static_cast<std::size_t>(Reject::kNotJson)], 1u);
  EXPECT_EQ(c.rejected[static_cast<std::size_t>(Reject::kVersion)], 2u);
  EXPECT_EQ(c.rejected[static_cast<std::size_t>(Reject::kUnknownType)], 1u);
  EXPECT_EQ(c.rejected[static_cast<std::size_t>(Reject::kSchema)], 1u);
  EXPECT_EQ(c.rejected[static_cast<std::size_t>(Reject::kTooLarge)], 1u);
  ASSERT_EQ(rejects.size(), 6u);
  EXPECT_EQ(rejects[4].reason, Reject::kSchema);
  EXPECT_NE(rejects[4].detail.find("/bpm"), std::string::npos);
  // Rejections are neither delivered nor unhandled.
  EXPECT_EQ(router.counts().delivered, 3u);
  EXPECT_EQ(router.counts().unhandled, 1u);
  EXPECT_EQ(transports.size(), 1u);
}

TEST(ControlRouter, LaterHandlerReplacesEarlierAndRejectHandlerIsOptional) {
  BasicRouter router;
  int first = 0, second = 0;
  router.on("error", [&](const ControlMessage&) { ++first; });
  router.on("error", [&](const ControlMessage&) { ++second; });
  EXPECT_FALSE(router.dispatch(samples()[8].second).has_value());
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
  EXPECT_TRUE(router.dispatch("not json").has_value());  // no reject handler: just counted
  EXPECT_EQ(router.counts().rejected[static_cast<std::size_t>(Reject::kNotJson)], 1u);
  // An empty handler counts as none.
  router.on("hello", BasicRouter::Handler{});
  EXPECT_FALSE(router.dispatch(samples()[5].second).has_value());
  EXPECT_EQ(router.counts().unhandled, 1u);
  EXPECT_EQ(router.counts().delivered, 1u);
}

// ---------------------------------------------------------------- schemas

TEST(ControlSchemas, EveryEmbeddedSchemaIsDraft7JsonAndLoads) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < detail::kEmbeddedSchemaCount; ++i) {
    const auto& [name, text] = detail::kEmbeddedSchemas[i];
    names.emplace_back(name);
    const auto doc = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << name;
    ASSERT_TRUE(doc.is_object()) << name;
    EXPECT_EQ(doc.value("$schema", ""), "http://json-schema.org/draft-07/schema#") << name;
    EXPECT_EQ(doc.at("properties").at("type").at("const"), name) << name;
    EXPECT_EQ(doc.at("properties").at("v").at("const"), kControlVersion) << name;
    EXPECT_EQ(doc.value("additionalProperties", false), true) << name;
    const auto required = doc.at("required");
    EXPECT_NE(std::find(required.begin(), required.end(), "v"), required.end()) << name;
    EXPECT_NE(std::find(required.begin(), required.end(), "type"), required.end()) << name;
  }
  std::sort(names.begin(), names.end());
  const std::vector<std::string> expected = {"error",       "hello",     "reply",
                                             "request",     "sync_ping", "sync_pong",
                                             "sync_status", "transport", "transport_state"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(SchemaSet::instance().types(), expected);  // all of them loaded into valijson
  EXPECT_EQ(&SchemaSet::instance(), &SchemaSet::instance());
}

TEST(ControlSchemas, SampleOfEachTypeValidates) {
  const auto& set = SchemaSet::instance();
  for (const auto& [type, text] : samples()) {
    EXPECT_EQ(set.validate(type, text), std::nullopt) << type;
    // Against another type's schema it fails (its "type" const at least).
    const std::string other = type == "error" ? "hello" : "error";
    EXPECT_TRUE(set.validate(other, text).has_value()) << type;
  }
  EXPECT_TRUE(set.validate("transport", "[]").has_value());
  EXPECT_TRUE(set.validate("transport", "not json").has_value());
  EXPECT_TRUE(set.validate("nope", samples()[0].second).has_value());
  const auto err = set.validate("transport", with(transport_json(), "bpm", 0));
  ASSERT_TRUE(err.has_value());
  EXPECT_NE(err->find("/bpm"), std::string::npos) << *err;
}

TEST(ControlSchemas, ConcurrentValidationFromFourThreads) {
  const auto s = samples();
  const std::string bad_bpm = with(transport_json(), "bpm", 0);
  const std::string bad_origin = with(transport_json(), "origin", "x");
  std::atomic<int> wrong{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const auto& [type, text] = s[static_cast<std::size_t>(i + t) % s.size()];
        if (SchemaSet::instance().validate(type, text).has_value()) ++wrong;
        auto e1 = SchemaSet::instance().validate("transport", bad_bpm);
        if (!e1 || e1->find("/bpm") == std::string::npos) ++wrong;
        auto e2 = SchemaSet::instance().validate("transport", bad_origin);
        if (!e2 || e2->find("/origin") == std::string::npos) ++wrong;
        auto p = parse(text);
        if (!p || type_name(*p) != type) ++wrong;
        ++done;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(done.load(), 400);
}

}  // namespace
}  // namespace jamnet::protocol::control
