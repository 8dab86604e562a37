#include "pkg/webhook/intake.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "pkg/webhook/github_events.h"
#include "pkg/webhook/signature.h"
#include "test/support/testbed.h"

namespace eph::webhook {
namespace {

using ::testing::HasSubstr;

constexpr char kSecret[] = "intake-secret";

std::string LabeledPayload(int number) {
  return R"({"action":"labeled","number":)" + std::to_string(number) +
         R"(,"pull_request":{"number":)" + std::to_string(number) +
         R"(},"label":{"name":"preview"},"repository":{"full_name":"acme/shop"}})";
}

class IntakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = state::OpenStore("sqlite:" + eph::testing::MakeTempDir("intake") + "/eph.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    intake_ = std::make_unique<WebhookIntake>(*store_, clock_, metrics_, kSecret);
    intake_->SetOnEnqueued([this] { ++wakeups_; });
  }

  IntakeResult Deliver(const std::string& event, const std::string& id, const std::string& body) {
    return intake_->HandleGitHub(event, id, SignGitHub(kSecret, body), body);
  }

  FakeClock clock_;
  MetricsRegistry metrics_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<WebhookIntake> intake_;
  int wakeups_ = 0;
};

TEST_F(IntakeTest, AcceptedDeliveryIsStoredAndQueuedBeforeTheAnswer) {
  const auto r = Deliver("pull_request", "d-1", LabeledPayload(42));
  EXPECT_EQ(r.HttpStatus(), 202);
  auto d = store_->GetDelivery("d-1");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->has_value());
  EXPECT_EQ((*d)->repo, "acme/shop");
  EXPECT_EQ((*d)->pr_number, 42);
  EXPECT_EQ((*d)->action, "labeled");
  EXPECT_EQ(*store_->QueueDepth(), 1);
  auto lease = store_->ClaimWork("w", clock_.Now(), std::chrono::seconds(30));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  EXPECT_EQ((*lease)->key, "acme/shop#42");
  EXPECT_EQ(wakeups_, 1);
}

TEST_F(IntakeTest, RepeatedDeliveryIdGets200AndNoNewWork) {
  ASSERT_EQ(Deliver("pull_request", "d-2", LabeledPayload(7)).HttpStatus(), 202);
  auto lease = store_->ClaimWork("w", clock_.Now(), std::chrono::seconds(30));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  ASSERT_TRUE(store_->CompleteWork(**lease, clock_.Now()).ok());
  const auto again = Deliver("pull_request", "d-2", LabeledPayload(7));
  EXPECT_EQ(again.HttpStatus(), 200);
  EXPECT_THAT(again.BodyJson(), HasSubstr("duplicate"));
  EXPECT_EQ(*store_->QueueDepth(), 0);
  EXPECT_EQ(wakeups_, 1);
}

TEST_F(IntakeTest, MissingOrWrongSignatureIs401AndStoresNothing) {
  const std::string body = LabeledPayload(1);
  EXPECT_EQ(intake_->HandleGitHub("pull_request", "d-3", "", body).HttpStatus(), 401);
  EXPECT_EQ(intake_->HandleGitHub("pull_request", "d-3", SignGitHub("wrong", body), body)
                .HttpStatus(),
            401);
  EXPECT_EQ(*store_->CountDeliveries(), 0);
  EXPECT_EQ(*store_->QueueDepth(), 0);
}

TEST_F(IntakeTest, MalformedJsonIs400) {
  const auto r = Deliver("pull_request", "d-4", "{not json");
  EXPECT_EQ(r.HttpStatus(), 400);
  EXPECT_THAT(r.BodyJson(), HasSubstr("JSON"));
  EXPECT_EQ(*store_->CountDeliveries(), 0);
}

TEST_F(IntakeTest, UnusedEventsAreRecordedWithoutWork) {
  const auto r = Deliver("star", "d-5", R"({"action":"created","repository":{"full_name":"a/b"}})");
  EXPECT_EQ(r.HttpStatus(), 202);
  EXPECT_THAT(r.BodyJson(), HasSubstr("recorded"));
  EXPECT_EQ(*store_->CountDeliveries(), 1);
  EXPECT_EQ(*store_->QueueDepth(), 0);
}

TEST_F(IntakeTest, CheckSuiteQueuesEveryPullRequestItConcerns) {
  const std::string body =
      R"({"action":"completed","check_suite":{"pull_requests":[{"number":3},{"number":4}]},)"
      R"("repository":{"full_name":"acme/shop"}})";
  EXPECT_EQ(Deliver("check_suite", "d-6", body).HttpStatus(), 202);
  EXPECT_EQ(*store_->QueueDepth(), 2);
}

TEST_F(IntakeTest, MissingDeliveryIdIs400) {
  const std::string body = LabeledPayload(1);
  EXPECT_EQ(intake_->HandleGitHub("pull_request", "", SignGitHub(kSecret, body), body).HttpStatus(),
            400);
}

TEST(IntakeNoSecretTest, RefusesEverythingWithoutASecret) {
  auto store = state::OpenStore("sqlite:" + eph::testing::MakeTempDir("intake") + "/eph.db");
  ASSERT_TRUE(store.ok());
  FakeClock clock;
  MetricsRegistry metrics;
  WebhookIntake intake(**store, clock, metrics, "");
  const std::string body = LabeledPayload(1);
  EXPECT_EQ(intake.HandleGitHub("pull_request", "x", SignGitHub("", body), body).HttpStatus(), 503);
}

TEST(DecodeGitHubEventTest, IssueCommentsOnlyOnPullRequests) {
  auto on_issue = DecodeGitHubEvent(
      "issue_comment", R"({"action":"created","issue":{"number":5},"repository":{"full_name":"a/b"}})");
  ASSERT_TRUE(on_issue.ok());
  EXPECT_TRUE(on_issue->pull_requests.empty());
  auto on_pr = DecodeGitHubEvent(
      "issue_comment",
      R"({"action":"created","issue":{"number":5,"pull_request":{}},"repository":{"full_name":"a/b"}})");
  ASSERT_TRUE(on_pr.ok());
  EXPECT_EQ(on_pr->pull_requests, std::vector<int64_t>{5});
}

// The controller reads only these fields (issue 13: it used to parse GitHub's payload itself).
TEST(DecodeGitHubEventTest, APersonsNewCommentOnAPullRequestIsAComment) {
  nlohmann::json payload = {
      {"action", "created"},
      {"issue", {{"number", 5}, {"pull_request", nlohmann::json::object()}}},
      {"repository", {{"full_name", "a/b"}}},
      {"comment",
       {{"id", 991}, {"body", "/eph keep"}, {"user", {{"login", "alice"}, {"type", "User"}}}}}};
  absl::StatusOr<ForgeEvent> e = DecodeGitHubEvent("issue_comment", payload.dump());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->kind, "comment");
  EXPECT_EQ(e->comment_id, 991);
  EXPECT_EQ(e->author, "alice");
  EXPECT_EQ(e->text, "/eph keep");

  auto kind_of = [](const nlohmann::json& p) {
    return DecodeGitHubEvent("issue_comment", p.dump()).value().kind;
  };
  nlohmann::json edited = payload;
  edited["action"] = "edited";
  EXPECT_EQ(kind_of(edited), "other") << "edits are not new comments";
  nlohmann::json bot = payload;
  bot["comment"]["user"]["type"] = "Bot";
  EXPECT_EQ(kind_of(bot), "other") << "bots do not command";
  nlohmann::json on_issue = payload;
  on_issue["issue"].erase("pull_request");
  EXPECT_EQ(kind_of(on_issue), "other");
  nlohmann::json bad_id = payload;
  bad_id["comment"]["id"] = "x";
  EXPECT_EQ(kind_of(bad_id), "other");
}

TEST(DecodeGitHubEventTest, EventsMapToNeutralKinds) {
  const std::string pr = R"({"action":"labeled","number":3,"repository":{"full_name":"a/b"}})";
  EXPECT_EQ(DecodeGitHubEvent("pull_request", pr)->kind, "pull_request");
  EXPECT_EQ(DecodeGitHubEvent("check_suite", R"({"action":"completed"})")->kind, "checks");
  EXPECT_EQ(DecodeGitHubEvent("status", R"({"sha":"abc"})")->kind, "checks");
  EXPECT_EQ(DecodeGitHubEvent("installation", R"({"action":"created"})")->kind, "installation");
  EXPECT_EQ(DecodeGitHubEvent("push", R"({"ref":"refs/heads/main"})")->kind, "push");
  EXPECT_EQ(DecodeGitHubEvent("ping", R"({"zen":"x"})")->kind, "other");
}

TEST(DecodeGitHubEventTest, NonObjectBodiesAreRejected) {
  EXPECT_FALSE(DecodeGitHubEvent("ping", "[1,2]").ok());
  EXPECT_FALSE(DecodeGitHubEvent("ping", "").ok());
  EXPECT_TRUE(DecodeGitHubEvent("ping", R"({"zen":"x"})").ok());
}

}  // namespace
}  // namespace eph::webhook
