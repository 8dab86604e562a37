#include "pkg/providers/docker/log_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "absl/time/time.h"

namespace eph::providers::docker {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

std::string Frame(int stream, std::string_view payload) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(stream);
  const auto n = static_cast<uint32_t>(payload.size());
  out[4] = static_cast<char>((n >> 24) & 0xff);
  out[5] = static_cast<char>((n >> 16) & 0xff);
  out[6] = static_cast<char>((n >> 8) & 0xff);
  out[7] = static_cast<char>(n & 0xff);
  return out + std::string(payload);
}

using Lines = std::vector<std::pair<int, std::string>>;

LogDemuxer::LineFn Collect(Lines& lines) {
  return [&lines](int stream, std::string_view line) {
    lines.emplace_back(stream, std::string(line));
    return true;
  };
}

TEST(DockerLogDemuxerTest, SplitsFramesIntoLinesPerStream) {
  const std::string data = Frame(1, "one\ntw") + Frame(2, "err\r\n") + Frame(1, "o\nthree");
  // Every way of cutting the bytes into chunks gives the same lines.
  for (size_t chunk = 1; chunk <= data.size(); ++chunk) {
    LogDemuxer demux;
    Lines lines;
    for (size_t i = 0; i < data.size(); i += chunk) {
      ASSERT_TRUE(demux.Feed(std::string_view(data).substr(i, chunk), Collect(lines)));
    }
    ASSERT_TRUE(demux.Finish(Collect(lines)));
    EXPECT_THAT(lines,
                ElementsAre(Pair(1, "one"), Pair(2, "err"), Pair(1, "two"), Pair(1, "three")))
        << "chunk " << chunk;
  }
}

TEST(DockerLogDemuxerTest, EmptyFramesAndLines) {
  LogDemuxer demux;
  Lines lines;
  EXPECT_TRUE(demux.Feed(Frame(1, "") + Frame(1, "\n\nx\n"), Collect(lines)));
  EXPECT_TRUE(demux.Finish(Collect(lines)));
  EXPECT_THAT(lines, ElementsAre(Pair(1, ""), Pair(1, ""), Pair(1, "x")));
}

TEST(DockerLogDemuxerTest, StopsWhenTheReaderSaysSo) {
  LogDemuxer demux;
  int calls = 0;
  auto once = [&](int, std::string_view) { return ++calls < 1; };
  EXPECT_FALSE(demux.Feed(Frame(1, "a\nb\nc\n"), once));
  EXPECT_FALSE(demux.Feed(Frame(1, "d\n"), once));
  EXPECT_EQ(calls, 1);
}

TEST(DockerLogDemuxerTest, RejectsACorruptHeader) {
  LogDemuxer demux;
  Lines lines;
  std::string bad = Frame(1, "ok\n") + Frame(7, "x\n");
  EXPECT_FALSE(demux.Feed(bad, Collect(lines)));
  EXPECT_TRUE(demux.corrupt());
  EXPECT_THAT(lines, ElementsAre(Pair(1, "ok")));
  LogDemuxer raw;  // a TTY stream has no headers: text is not mistaken for frames
  EXPECT_FALSE(raw.Feed("hello world\n", Collect(lines)));
  EXPECT_TRUE(raw.corrupt());
}

TEST(DockerLogDemuxerTest, CutsOverlongLines) {
  LogDemuxer demux;
  Lines lines;
  const std::string longline(LogDemuxer::kMaxLine + 10, 'x');
  EXPECT_TRUE(demux.Feed(Frame(2, longline + "\n"), Collect(lines)));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].second.size(), LogDemuxer::kMaxLine);
  EXPECT_EQ(lines[1].second, std::string(10, 'x'));
}

TEST(DockerLogTimestampTest, ParsesTheEnginesTimestamps) {
  TimePoint at{};
  EXPECT_EQ(SplitTimestamp("2026-11-27T17:30:50.123456789Z served 1", at), "served 1");
  EXPECT_EQ(absl::FromChrono(at), absl::FromUnixNanos(1795800650123456789));
  TimePoint untouched{};
  EXPECT_EQ(SplitTimestamp("no timestamp here", untouched), "no timestamp here");
  EXPECT_EQ(untouched, TimePoint{});
}

}  // namespace
}  // namespace eph::providers::docker
