#include "jamnet/core/log.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "jamnet/core/rt_scope.hpp"

namespace jamnet::log {
namespace {

std::vector<std::string> g_lines;
void capture(Level level, std::string_view line) {
  g_lines.push_back(std::string(to_string(level)) + ": " + std::string(line));
}

TEST(Log, LinesGoToTheAppsSinkAndNeverFromRealTimeWork) {
  g_lines.clear();
  set_sink(capture);
  set_level(Level::kInfo);
  warn("port busy");
  write(Level::kDebug, "not shown at info");
  const auto before = suppressed();
  {
    const rt::Scope scope(rt::Work::kReceive);
    error("from a real-time thread");  // counted, not written
  }
  info("after");
  set_sink(nullptr);
  ASSERT_EQ(g_lines.size(), 2u);
  EXPECT_EQ(g_lines[0], "warning: port busy");
  EXPECT_EQ(g_lines[1], "info: after");
  EXPECT_EQ(suppressed(), before + 1);
}

}  // namespace
}  // namespace jamnet::log
