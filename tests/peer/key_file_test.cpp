// Key and passphrase files: written owner-only, never overwritten, read back
// exactly, and refused (with the fix named) when others may read them.
#include "jamnet/peer/key_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace jamnet {
namespace {

struct KeyFileTest : ::testing::Test {
  std::filesystem::path dir;
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("jamnet-keyfile-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text, mode_t mode) {
    const auto p = (dir / name).string();
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p;
  }
};

TEST_F(KeyFileTest, KeygenWritesAnOwnerOnlyKeyThatReadsBack) {
  const auto path = (dir / "band.key").string();
  const auto key = write_new_key_file(path);
  ASSERT_TRUE(key) << key.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 65);  // 64 hex digits and a newline
  const auto back = read_key_file(path);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, *key);
  // Two keys are never the same.
  const auto other = write_new_key_file((dir / "other.key").string());
  ASSERT_TRUE(other);
  EXPECT_NE(*other, *key);
}

TEST_F(KeyFileTest, KeygenNeverOverwritesAKey) {
  const auto path = (dir / "band.key").string();
  const auto first = write_new_key_file(path);
  ASSERT_TRUE(first);
  const auto second = write_new_key_file(path);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("exists"), std::string::npos);
  EXPECT_EQ(*read_key_file(path), *first);
}

TEST_F(KeyFileTest, AKeyFileOthersCanReadIsRefusedWithTheFix) {
  const auto path = (dir / "band.key").string();
  ASSERT_TRUE(write_new_key_file(path));
  ::chmod(path.c_str(), 0644);
  const auto key = read_key_file(path);
  ASSERT_FALSE(key);
  EXPECT_NE(key.error().message.find("0644"), std::string::npos) << key.error().message;
  EXPECT_NE(key.error().message.find("chmod 600"), std::string::npos);
  ::chmod(path.c_str(), 0660);  // the group too
  EXPECT_FALSE(read_key_file(path));
  ::chmod(path.c_str(), 0400);  // owner read-only is fine
  EXPECT_TRUE(read_key_file(path));
}

TEST_F(KeyFileTest, MalformedKeysAndMissingFilesAreExplained) {
  const auto short_key = write("short.key", "abcd\n", 0600);
  const auto r1 = read_key_file(short_key);
  ASSERT_FALSE(r1);
  EXPECT_NE(r1.error().message.find("64 hex digits"), std::string::npos);
  const auto not_hex = write("nothex.key", std::string(64, 'g') + "\n", 0600);
  EXPECT_FALSE(read_key_file(not_hex));
  const auto missing = read_key_file((dir / "nope.key").string());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot open"), std::string::npos);
  EXPECT_FALSE(read_key_file(dir.string()));  // a directory
}

TEST_F(KeyFileTest, PassphraseIsTheFirstLineOfAnOwnerOnlyFile) {
  const auto path = write("pass", "correct horse battery staple\r\nsecond line\n", 0600);
  const auto p = read_passphrase_file(path);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(*p, "correct horse battery staple");
  EXPECT_FALSE(read_passphrase_file(write("open", "secret\n", 0644)));
  EXPECT_FALSE(read_passphrase_file(write("empty", "\n", 0600)));
}

}  // namespace
}  // namespace jamnet
