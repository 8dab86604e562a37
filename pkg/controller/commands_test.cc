#include "pkg/controller/commands.h"

#include <gtest/gtest.h>


namespace eph::controller {
namespace {

using Kind = Command::Kind;
using namespace std::chrono_literals;

TEST(ParseCommandTest, TheFourCommands) {
  EXPECT_EQ(ParseCommand("/eph redeploy")->kind, Kind::kRedeploy);
  EXPECT_EQ(ParseCommand("/eph down")->kind, Kind::kDown);
  EXPECT_EQ(ParseCommand("/eph keep")->kind, Kind::kKeep);
  std::optional<Command> extend = ParseCommand("/eph extend 24h");
  ASSERT_TRUE(extend.has_value());
  EXPECT_EQ(extend->kind, Kind::kExtend);
  EXPECT_EQ(extend->extend_by, std::chrono::duration_cast<Duration>(24h));
  EXPECT_EQ(extend->text, "/eph extend 24h");
}

TEST(ParseCommandTest, TheFirstCommandLineCountsAndTheRestIsFreeText) {
  std::optional<Command> c =
      ParseCommand("Looks good, but the preview is stale.\r\n  /eph redeploy  \n/eph down\nthanks");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->kind, Kind::kRedeploy);
  EXPECT_EQ(c->text, "/eph redeploy");
}

TEST(ParseCommandTest, CommentsWithoutACommandAreNotCommands) {
  EXPECT_FALSE(ParseCommand("").has_value());
  EXPECT_FALSE(ParseCommand("LGTM").has_value());
  EXPECT_FALSE(ParseCommand("run `/eph redeploy` to refresh").has_value());
  EXPECT_FALSE(ParseCommand("/ephemeral is a word").has_value());
}

TEST(ParseCommandTest, MistakesAreReportedNotIgnored) {
  for (const char* text : {"/eph", "/eph deploy", "/eph extend", "/eph extend soon",
                           "/eph extend -1h", "/eph extend 0s", "/eph down now",
                           "/eph extend 24h 48h", "/eph extend 9000d"}) {
    std::optional<Command> c = ParseCommand(text);
    ASSERT_TRUE(c.has_value()) << text;
    EXPECT_EQ(c->kind, Kind::kInvalid) << text;
    EXPECT_FALSE(c->error.empty()) << text;
  }
  EXPECT_NE(ParseCommand("/eph deploy")->error.find("unknown command"), std::string::npos);
}

TEST(CommandFromDeliveryTest, ReadsTheNeutralComment) {
  state::Delivery d;
  d.kind = state::kDeliveryComment;
  d.comment_id = 991;
  d.author = "alice";
  d.text = "/eph keep";
  std::optional<CommandComment> c = CommandFromDelivery(d);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->comment_id, 991);
  EXPECT_EQ(c->author, "alice");
  EXPECT_EQ(c->command.kind, Kind::kKeep);

  d.text = "looks good";
  EXPECT_FALSE(CommandFromDelivery(d).has_value()) << "no command in it";
  d.text = "/eph keep";
  d.kind = state::kDeliveryPullRequest;
  EXPECT_FALSE(CommandFromDelivery(d).has_value()) << "not a comment";
}

}  // namespace
}  // namespace eph::controller
