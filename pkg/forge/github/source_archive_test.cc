#include "pkg/forge/github/source_archive.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "fmt/format.h"
#include "test/support/testbed.h"

namespace eph::forge::github {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct Entry {
  std::string name;
  std::string content;
  char type = '0';
  std::string link;
  int mode = 0644;
};

std::string Header(const Entry& e, size_t size) {
  std::string h(512, '\0');
  h.replace(0, std::min<size_t>(e.name.size(), 100), e.name.substr(0, 100));
  h.replace(100, 8, fmt::format("{:07o}", e.mode) + '\0');
  h.replace(108, 8, std::string("0000000\0", 8));
  h.replace(116, 8, std::string("0000000\0", 8));
  h.replace(124, 12, fmt::format("{:011o}", size) + '\0');
  h.replace(136, 12, std::string("00000000000\0", 12));
  h.replace(148, 8, "        ");
  h[156] = e.type;
  h.replace(157, std::min<size_t>(e.link.size(), 100), e.link.substr(0, 100));
  h.replace(257, 6, std::string("ustar\0", 6));
  h.replace(263, 2, "00");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  h.replace(148, 8, fmt::format("{:06o}", sum) + std::string("\0 ", 2));
  return h;
}

std::string Pad(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

std::string TarGz(const std::vector<Entry>& entries) {
  std::string tar;
  for (const Entry& e : entries) {
    if (e.name.size() > 100) {
      const std::string record = " path=" + e.name + "\n";
      size_t length = record.size() + 1;
      while (std::to_string(length).size() + record.size() != length) ++length;
      std::string pax = std::to_string(length) + record;
      tar += Header({"pax", "", 'x'}, pax.size()) + Pad(pax);
    }
    tar += Header(e, e.content.size()) + Pad(e.content);
  }
  tar += std::string(1024, '\0');
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, tar.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(tar.data());
  z.avail_in = static_cast<uInt>(tar.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string Read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class SourceArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    parent_ = testing::MakeTempDir("source-archive");
    dest_ = parent_ + "/checkout";
    fs::create_directory(dest_);
  }
  std::string parent_;
  std::string dest_;
};

TEST_F(SourceArchiveTest, UnpacksBelowTheTopLevelDirectory) {
  const std::string long_path = "top/" + std::string(120, 'd') + "/file.txt";
  ASSERT_TRUE(ExtractTarGz(TarGz({{"top/", "", '5'},
                                  {"top/eph.yaml", "name: x\n"},
                                  {"top/k8s/app.yaml", "kind: Deployment\n"},
                                  {"top/run.sh", "#!/bin/sh\n", '0', "", 0755},
                                  {"top/docs/link.md", "", '2', "../k8s/app.yaml"},
                                  {long_path, "deep"}}),
                           dest_)
                  .ok());
  EXPECT_EQ(Read(dest_ + "/eph.yaml"), "name: x\n");
  EXPECT_EQ(Read(dest_ + "/k8s/app.yaml"), "kind: Deployment\n");
  EXPECT_EQ(Read(dest_ + "/docs/link.md"), "kind: Deployment\n");
  EXPECT_EQ(Read(dest_ + "/" + long_path.substr(4)), "deep");
  struct stat st;
  ASSERT_EQ(stat((dest_ + "/run.sh").c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 0100, 0u);
}

TEST_F(SourceArchiveTest, RefusesEverythingThatWouldLeaveTheDirectory) {
  struct Case {
    std::vector<Entry> entries;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"top/../../evil", "x"}}, "contains .."},
      {{{"/etc/evil", "x"}}, "absolute"},
      {{{"top/link", "", '2', "../../outside"}}, "leaving the repository"},
      {{{"top/link", "", '2', "/etc/passwd"}}, "leaving the repository"},
      {{{"top/dir", "", '2', "."}, {"top/dir/../../x", "x"}}, "contains .."},
      {{{"top/up", "", '2', "."}, {"top/esc", "", '2', "up/.."}}, "leaving the repository"},
      {{{"top/out", "", '2', "sub"}, {"top/out/file", "x"}}, "through a symbolic link"},
      {{{"top/hard", "", '1', "top/x"}}, "hard links"},
  };
  for (const Case& c : cases) {
    fs::remove_all(dest_);
    fs::create_directory(dest_);
    absl::Status s = ExtractTarGz(TarGz(c.entries), dest_);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.entries[0].name << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
  EXPECT_FALSE(fs::exists(parent_ + "/evil"));
  EXPECT_FALSE(fs::exists(parent_ + "/x"));
}

TEST_F(SourceArchiveTest, BoundsSizeAndEntriesAndRejectsGarbage) {
  EXPECT_EQ(ExtractTarGz(TarGz({{"top/big", std::string(1 << 20, 'a')}}), dest_,
                         {.max_unpacked_bytes = 1 << 19})
                .code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ExtractTarGz(TarGz({{"top/a", "1"}, {"top/b", "2"}, {"top/c", "3"}}), dest_,
                         {.max_entries = 2})
                .code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ExtractTarGz("not gzip at all", dest_).code(), absl::StatusCode::kInvalidArgument);
  const std::string whole = TarGz({{"top/a", std::string(5000, 'a')}});
  EXPECT_EQ(ExtractTarGz(whole.substr(0, whole.size() / 2), dest_).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eph::forge::github
