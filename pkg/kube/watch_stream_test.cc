#include "pkg/kube/watch_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace eph::kube {
namespace {

// A realistic stream: every event type, a bookmark, a multi-byte UTF-8 value and an object big
// enough to span several network chunks.
std::string SampleStream() {
  std::string big(1500, 'x');
  return R"({"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"10"},"data":{"k":"h\u00e9llo \u2603"}}})"
         "\n"
         R"({"type":"MODIFIED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"11"},"data":{"big":")" +
         big +
         R"("}}})"
         "\n"
         R"({"type":"BOOKMARK","object":{"kind":"ConfigMap","metadata":{"resourceVersion":"15"}}})"
         "\n"
         R"({"type":"DELETED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"16"}}})"
         "\n"
         R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old resource version: 1 (16)","reason":"Expired","code":410}})json"
         "\n";
}

struct Seen {
  std::string type;
  std::string name;
  std::string rv;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> ParseInPieces(const std::string& stream, const std::vector<size_t>& cuts) {
  WatchStreamParser parser;
  std::vector<Seen> out;
  auto on_event = [&](WatchEvent&& e) {
    out.push_back({std::string(WatchEventTypeName(e.type)),
                   e.object.value("metadata", nlohmann::json::object()).value("name", ""),
                   ResourceVersionOf(e.object)});
  };
  size_t start = 0;
  for (size_t cut : cuts) {
    EXPECT_TRUE(parser.Feed(std::string_view(stream).substr(start, cut - start), on_event).ok());
    start = cut;
  }
  EXPECT_TRUE(parser.Feed(std::string_view(stream).substr(start), on_event).ok());
  EXPECT_FALSE(parser.HasPartialEvent());
  return out;
}

TEST(WatchStreamParserTest, ParsesEveryEventType) {
  const std::vector<Seen> events = ParseInPieces(SampleStream(), {});
  EXPECT_THAT(events, ::testing::ElementsAre(Seen{"ADDED", "a", "10"}, Seen{"MODIFIED", "a", "11"},
                                             Seen{"BOOKMARK", "", "15"}, Seen{"DELETED", "a", "16"},
                                             Seen{"ERROR", "", ""}));
}

TEST(WatchStreamParserTest, SameEventsWhereverTheStreamIsSplitInTwo) {
  const std::string stream = SampleStream();
  const std::vector<Seen> whole = ParseInPieces(stream, {});
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    ASSERT_EQ(ParseInPieces(stream, {cut}), whole) << "split at byte " << cut;
  }
}

TEST(WatchStreamParserTest, SameEventsWhenFedOneByteAtATime) {
  const std::string stream = SampleStream();
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(ParseInPieces(stream, cuts), ParseInPieces(stream, {}));
}

TEST(WatchStreamParserTest, EventsAreDeliveredAsSoonAsTheirNewlineArrives) {
  WatchStreamParser parser;
  int events = 0;
  auto count = [&](WatchEvent&&) { ++events; };
  const std::string one = R"({"type":"ADDED","object":{"metadata":{"resourceVersion":"1"}}})";
  ASSERT_TRUE(parser.Feed(one, count).ok());
  EXPECT_EQ(events, 0);
  EXPECT_TRUE(parser.HasPartialEvent());
  ASSERT_TRUE(parser.Feed("\n", count).ok());
  EXPECT_EQ(events, 1);
  EXPECT_FALSE(parser.HasPartialEvent());
}

TEST(WatchStreamParserTest, ToleratesBlankLinesAndCrLf) {
  WatchStreamParser parser;
  int events = 0;
  ASSERT_TRUE(parser
                  .Feed("\n\r\n"
                        R"({"type":"DELETED","object":{}})"
                        "\r\n\n",
                        [&](WatchEvent&& e) {
                          EXPECT_EQ(e.type, WatchEventType::kDeleted);
                          ++events;
                        })
                  .ok());
  EXPECT_EQ(events, 1);
}

TEST(WatchStreamParserTest, MalformedInputIsAnErrorNotACrash) {
  const std::vector<std::string> bad_lines = {
      "not json",
      "[1,2]",
      R"({"object":{}})",
      R"({"type":"EXPLODED","object":{}})",
      R"({"type":"ADDED"})",
      R"({"type":"ADDED","object":"text"})",
      R"({"type":7,"object":{}})",
  };
  for (const auto& line : bad_lines) {
    const std::string input = line + "\n";
    WatchStreamParser parser;
    int events = 0;
    const absl::Status st = parser.Feed(input, [&](WatchEvent&&) { ++events; });
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << input << " -> " << st;
    EXPECT_EQ(events, 0) << input;
    // The stream stays failed.
    EXPECT_FALSE(parser
                     .Feed(R"({"type":"ADDED","object":{}})"
                           "\n",
                           [&](WatchEvent&&) { ++events; })
                     .ok());
    EXPECT_EQ(events, 0);
  }
}

TEST(WatchStreamParserTest, RefusesAnEventLargerThanTheLimit) {
  WatchStreamParser parser(/*max_event_bytes=*/100);
  const absl::Status st = parser.Feed(std::string(101, '{'), [](WatchEvent&&) {});
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("larger than 100 bytes"));
}

TEST(WatchStreamParserTest, ResourceVersionOfToleratesOddObjects) {
  EXPECT_EQ(ResourceVersionOf(nlohmann::json::parse(R"({"metadata":{"resourceVersion":"7"}})")),
            "7");
  EXPECT_EQ(ResourceVersionOf(nlohmann::json::parse(R"({"metadata":{"resourceVersion":7}})")), "");
  EXPECT_EQ(ResourceVersionOf(nlohmann::json::parse(R"({"metadata":[]})")), "");
  EXPECT_EQ(ResourceVersionOf(nlohmann::json::parse("[]")), "");
}

}  // namespace
}  // namespace eph::kube
