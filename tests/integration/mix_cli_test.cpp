// `jamnet mix` sets one source of a running peer's personal mix through the
// session's control stream (Session::set_mix); bad requests are refused with
// a reason and a non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <random>
#include <string>
#include <vector>

#include "../support/child_process.hpp"
#include "jamnet/peer/session.hpp"

namespace jamnet {
namespace {

int run(std::vector<std::string> args) {
  testing::Child c = testing::spawn(args);
  int status = 0;
  ::waitpid(c.pid, &status, 0);
  c.pid = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(MixCli, SetsTheMixOfTheNamedPeer) {
  const std::string session = "mix-cli-" + std::to_string(::getpid());
  const std::string group =
      "239.255.74.80:" + std::to_string(40000 + std::random_device{}() % 20000);
  SessionOptions o;
  o.peer.name = "rx";
  o.peer.session = session_id_from(session);
  o.peer.multicast = *net::Endpoint::parse(group);
  o.peer.sync = SyncConfig{};
  o.audio = AudioIo::kHost;
  o.channels = 2;
  auto s = Session::start(o);
  ASSERT_TRUE(s) << s.error().message;
  auto mix = [&](std::vector<std::string> extra) {
    std::vector<std::string> a{JAMNET_BIN, "mix", "--session", session, "--multicast", group};
    a.insert(a.end(), extra.begin(), extra.end());
    return run(a);
  };
  EXPECT_EQ(mix({"--to", "rx", "--source", "drums", "--gain-db", "-6", "--pan", "0.5"}), 0);
  auto find = [&]() -> std::optional<MixSetting> {
    const auto st = (*s)->status();
    for (const auto& [name, m] : st.bridge->mix)
      if (name == "drums") return m;
    return std::nullopt;
  };
  ASSERT_TRUE(find());
  EXPECT_DOUBLE_EQ(find()->gain_db, -6.0);
  EXPECT_DOUBLE_EQ(find()->pan, 0.5);
  EXPECT_FALSE(find()->mute);
  // What a request leaves out keeps its value.
  EXPECT_EQ(mix({"--to", "rx", "--source", "drums", "--mute"}), 0);
  EXPECT_TRUE(find()->mute);
  EXPECT_DOUBLE_EQ(find()->gain_db, -6.0);
  // Refused: no target, out of range, a peer that is not there.
  EXPECT_EQ(mix({"--source", "drums"}), 2);
  EXPECT_EQ(mix({"--to", "rx", "--source", "drums", "--gain-db", "99"}), 2);
  EXPECT_EQ(mix({"--to", "nobody", "--source", "drums", "--wait-ms", "500"}), 1);
  (*s)->stop();
}

}  // namespace
}  // namespace jamnet
