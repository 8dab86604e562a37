#include "pkg/controller/comment_commands.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pkg/controller/env_record.h"
#include "pkg/controller/test_world.h"

namespace eph::controller::testing {
namespace {

using state::EnvState;
using std::chrono::hours;
using ::testing::HasSubstr;

// CommentCommands on a World's ready environment for pull request 70, with its own intents.
class CommentCommandsTest : public ::testing::Test {
 protected:
  CommentCommandsTest()
      : intents_(*w_.store, w_.clock, w_.random, w_.options.lifecycle),
        commands_(*w_.store, w_.forge, intents_, w_.clock) {
    w_.OpenPr(70);
    w_.MustReconcile(70);
    w_.forge.GrantWrite(kRepo, "alice");
    Drain();
  }

  void Comment(int64_t id, const std::string& user, const std::string& text) {
    state::Delivery d;
    d.id = "comment-" + std::to_string(id);
    d.forge = "github";
    d.event = "issue_comment";
    d.action = "created";
    d.repo = kRepo;
    d.pr_number = 70;
    d.received_at = w_.clock.Now();
    d.kind = state::kDeliveryComment;
    d.comment_id = id;
    d.author = user;
    d.text = text;
    ASSERT_TRUE(w_.store->RecordDelivery(d, std::nullopt).ok());
  }

  // The keys waiting in the queue, taken out one by one.
  std::vector<std::string> Drain() {
    std::vector<std::string> keys;
    for (;;) {
      absl::StatusOr<std::optional<state::Lease>> lease =
          w_.store->ClaimWork("test", w_.clock.Now(), hours(1));
      if (!lease.ok() || !lease->has_value()) return keys;
      keys.push_back((*lease)->key);
      EXPECT_TRUE(w_.store->CompleteWork(**lease, w_.clock.Now()).ok());
    }
  }

  World w_;
  EnvironmentIntents intents_;
  CommentCommands commands_;
};

TEST_F(CommentCommandsTest, ACommandIsCarriedOutThroughTheIntentWithItsReceiptInOneWrite) {
  const state::Environment before = *w_.Live(70);
  w_.clock.Advance(hours(1));
  Comment(7001, "alice", "/eph keep");
  const CommentCommands::Outcome outcome = commands_.Handle(before).value();
  ASSERT_TRUE(outcome.env.has_value());
  EXPECT_FALSE(outcome.destroying);
  EXPECT_FALSE(outcome.env->expires_at.has_value());
  EXPECT_EQ(outcome.env->version, before.version + 1) << "the change and the receipt together";
  const EnvRecord record = ParseEnvRecord(outcome.env->spec_json);
  EXPECT_EQ(record.last_comment_id, 7001);
  EXPECT_THAT(record.command_note, HasSubstr("kept, no TTL"));
  EXPECT_TRUE(Drain().empty()) << "the pass that ran the command carries it out: no second pass";

  // Handled once.
  EXPECT_FALSE(commands_.Handle(*outcome.env).value().env.has_value());
}

TEST_F(CommentCommandsTest, RefusedAndIgnoredCommandsOnlyWriteTheNewestNote) {
  const state::Environment before = *w_.Live(70);
  Comment(7001, "alice", "/eph extend soon");
  Comment(7002, "mallory", "/eph down");
  const CommentCommands::Outcome outcome = commands_.Handle(before).value();
  ASSERT_TRUE(outcome.env.has_value());
  EXPECT_EQ(outcome.env->state, EnvState::kReady);
  EXPECT_EQ(outcome.env->version, before.version + 1);
  const EnvRecord record = ParseEnvRecord(outcome.env->spec_json);
  EXPECT_EQ(record.last_comment_id, 7002);
  EXPECT_THAT(record.command_note, HasSubstr("@mallory was ignored"));
  EXPECT_TRUE(Drain().empty()) << "no intent ran";
}

TEST_F(CommentCommandsTest, DownStartsDestroyingAndLeavesLaterCommandsForLater) {
  const state::Environment before = *w_.Live(70);
  Comment(7001, "alice", "/eph down");
  Comment(7002, "alice", "/eph redeploy");
  const CommentCommands::Outcome outcome = commands_.Handle(before).value();
  ASSERT_TRUE(outcome.env.has_value());
  EXPECT_TRUE(outcome.destroying);
  EXPECT_EQ(outcome.env->state, EnvState::kDestroying);
  EXPECT_EQ(outcome.env->reason, "`/eph down` from @alice");
  const EnvRecord record = ParseEnvRecord(outcome.env->spec_json);
  EXPECT_EQ(record.last_comment_id, 7001);
  EXPECT_EQ(record.block_recreate, std::optional<bool>(true));
}

}  // namespace
}  // namespace eph::controller::testing
