#include "pkg/controller/reconciler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "pkg/controller/resync.h"
#include "pkg/controller/test_world.h"
#include "pkg/workkey/work_key.h"

namespace eph::controller::testing {
namespace {

using forge::DeploymentState;
using forge::FakeForge;
using providers::FakeProvider;
using providers::Phase;
using state::EnvState;
using std::chrono::hours;
using std::chrono::minutes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

using M = FakeProvider::Method;

std::vector<std::string> StatesOf(World& w, const std::string& env) {
  absl::StatusOr<std::vector<state::EnvEvent>> events = w.store->EventsFor(env);
  EXPECT_TRUE(events.ok()) << events.status();
  std::vector<std::string> out;
  if (!events.ok()) return out;
  for (const state::EnvEvent& e : *events) out.push_back(e.to_state);
  return out;
}

std::vector<DeploymentState> DeploymentStates(const FakeForge::Deployment& d) {
  std::vector<DeploymentState> out;
  for (const forge::DeploymentStatus& s : d.statuses) out.push_back(s.state);
  return out;
}

std::string CommentFor(World& w, int64_t pr, const std::string& env) {
  std::optional<FakeForge::Comment> c =
      w.forge.CommentWithMarker(kRepo, pr, EnvironmentReconciler::CommentMarker(env));
  return c ? c->body : "";
}

TEST(ReconcilerTest, LabelledPullRequestGetsAReadyEnvironment) {
  World w;
  w.OpenPr(42);
  const TimePoint start = w.clock.Now();
  w.MustReconcile(42);

  std::optional<state::Environment> env = w.Live(42);
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->state, EnvState::kReady);
  EXPECT_THAT(env->name, StartsWith("my-app-"));
  EXPECT_EQ(env->url, "https://" + env->name + "." + kBaseDomain);
  EXPECT_EQ(env->head_sha, Sha(1));
  EXPECT_EQ(env->provider, "kubernetes");
  ASSERT_TRUE(env->expires_at.has_value());
  EXPECT_EQ(*env->expires_at, start + hours(72));
  EXPECT_EQ(StatesOf(w, env->name), (std::vector<std::string>{"provisioning", "ready"}));

  // What the provider was asked for.
  std::optional<providers::ApplyRequest> applied = w.provider->LastApply(env->name);
  ASSERT_TRUE(applied.has_value());
  EXPECT_EQ(applied->namespace_name, "eph-" + env->name);
  EXPECT_EQ(applied->host, env->name + "." + kBaseDomain);
  EXPECT_EQ(applied->head_sha, Sha(1));
  EXPECT_EQ(applied->labels.at("eph.dev/managed-by"), "eph");
  EXPECT_EQ(applied->labels.at("eph.dev/environment"), env->name);
  ASSERT_EQ(applied->images.size(), 1u);
  EXPECT_EQ(applied->images[0].name, "api");
  EXPECT_EQ(applied->images[0].tag, "pr-42");
  EXPECT_THAT(applied->config_json, HasSubstr("k8s/base"));

  // What the pull request shows.
  EXPECT_THAT(CommentFor(w, 42, env->name),
              AllOf(HasSubstr("Ready at " + env->url), HasSubstr(Sha(1).substr(0, 7))));
  EXPECT_EQ(w.forge.Comments(kRepo, 42).size(), 1u);
  std::vector<FakeForge::Deployment> deployments = w.forge.Deployments(kRepo);
  ASSERT_EQ(deployments.size(), 1u);
  EXPECT_EQ(deployments[0].request.ref, Sha(1));
  EXPECT_EQ(deployments[0].request.environment, env->name);
  EXPECT_TRUE(deployments[0].request.transient);
  ASSERT_EQ(DeploymentStates(deployments[0]), std::vector{DeploymentState::kSuccess});
  EXPECT_EQ(deployments[0].statuses[0].environment_url, env->url);
}

TEST(ReconcilerTest, EachApplyGetsAFreshCheckoutOfTheCommitRemovedAfterwards) {
  World w;
  w.OpenPr(42);
  std::string seen_config;
  w.provider->SetCallHook([&](M method, const std::string& environment) {
    if (method != M::kObserve) return;
    std::optional<providers::ApplyRequest> applied = w.provider->LastApply(environment);
    if (!applied) return;
    std::ifstream in(applied->source_dir + "/eph.yaml");
    seen_config.assign(std::istreambuf_iterator<char>(in), {});
  });
  w.MustReconcile(42);
  std::optional<state::Environment> env = w.Live(42);
  ASSERT_TRUE(env.has_value());
  std::optional<providers::ApplyRequest> applied = w.provider->LastApply(env->name);
  ASSERT_TRUE(applied.has_value());
  EXPECT_FALSE(applied->source_dir.empty());
  EXPECT_EQ(seen_config, w.config_yaml);  // the commit's files were there during the apply
  EXPECT_FALSE(std::filesystem::exists(applied->source_dir));
}

TEST(ReconcilerTest, SourceThatCannotBeFetchedIsRetriedOrFailsTheEnvironment) {
  World w;
  w.OpenPr(42);
  w.forge.FailNext(FakeForge::Method::kFetchSource, absl::UnavailableError("codeload 502"));
  EXPECT_EQ(w.Reconcile(42).status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(w.Live(42).has_value());
  EXPECT_FALSE(w.provider->LastApply(w.Live(42)->name).has_value());
  w.forge.FailNext(FakeForge::Method::kFetchSource,
                   absl::InvalidArgumentError("archive entry \"x\" contains .."));
  w.MustReconcile(42);
  std::optional<state::Environment> env = w.Live(42);
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->state, EnvState::kFailed);
  EXPECT_THAT(env->reason, HasSubstr("fetching the source failed: archive entry"));
}

TEST(ReconcilerTest, ProgressingEnvironmentStaysProvisioningAndAsksToBeRequeued) {
  World w;
  w.OpenPr(1);
  w.provider->SetPhaseAfterApply(Phase::kProgressing);
  ReconcileResult first = w.MustReconcile(1);
  std::optional<state::Environment> env = w.Live(1);
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->state, EnvState::kProvisioning);
  EXPECT_EQ(first.requeue_after, w.options.progress_poll);
  EXPECT_THAT(CommentFor(w, 1, env->name), HasSubstr("Being created"));

  // Still progressing: nothing changes, no second Apply.
  ReconcileResult second = w.MustReconcile(1);
  EXPECT_EQ(second.requeue_after, w.options.progress_poll);
  EXPECT_EQ(w.provider->Calls(M::kApply), 1);

  w.provider->SetPhase(env->name, Phase::kReady);
  ReconcileResult third = w.MustReconcile(1);
  env = w.Live(1);
  EXPECT_EQ(env->state, EnvState::kReady);
  EXPECT_NE(third.requeue_after, w.options.progress_poll);
  EXPECT_EQ(w.provider->Calls(M::kApply), 1);
  std::vector<FakeForge::Deployment> deployments = w.forge.Deployments(kRepo);
  ASSERT_EQ(deployments.size(), 1u);
  EXPECT_EQ(DeploymentStates(deployments[0]),
            (std::vector{DeploymentState::kInProgress, DeploymentState::kSuccess}));
  EXPECT_THAT(CommentFor(w, 1, env->name), HasSubstr("Ready at"));
}

TEST(ReconcilerTest, ANotProgressingEnvironmentSaysWhyAndFailsAtItsProgressDeadline) {
  World w;
  w.OpenPr(1);
  w.provider->SetPhaseAfterApply(Phase::kProgressing);
  ReconcileResult first = w.MustReconcile(1);
  std::optional<state::Environment> env = w.Live(1);
  ASSERT_TRUE(env.has_value());
  const std::string name = env->name;
  EXPECT_EQ(env->reason, "");  // a rollout under way for a few seconds is no news
  EXPECT_EQ(first.requeue_after, w.options.progress_poll);
  const std::string why =
      "waiting for statefulset db: 0 of 1 pods ready (pod db-0 not scheduled: 0/1 nodes are "
      "available: pod has unbound immediate PersistentVolumeClaims)";
  w.provider->SetPhase(name, Phase::kProgressing, why);
  w.clock.Advance(std::chrono::seconds(30));
  w.MustReconcile(1);
  EXPECT_EQ(w.Live(1)->state, EnvState::kProvisioning);
  EXPECT_EQ(w.Live(1)->reason, why);
  EXPECT_THAT(CommentFor(w, 1, name),
              AllOf(HasSubstr("Being created"), HasSubstr("Not ready yet"),
                    HasSubstr("unbound immediate PersistentVolumeClaims")));

  // The default deadline is 10 minutes from when the apply began; the pass before it asks to
  // be woken at the deadline.
  w.clock.Advance(std::chrono::minutes(9) + std::chrono::seconds(29));
  ReconcileResult before = w.MustReconcile(1);
  EXPECT_EQ(w.Live(1)->state, EnvState::kProvisioning);
  EXPECT_EQ(before.requeue_after, std::chrono::seconds(1));
  w.clock.Advance(std::chrono::seconds(1));
  w.MustReconcile(1);
  env = w.Live(1);
  EXPECT_EQ(env->state, EnvState::kFailed);
  EXPECT_EQ(env->reason,
            "not ready 10m after the apply began (kubernetes.progress_deadline): " + why);
  EXPECT_THAT(CommentFor(w, 1, name), AllOf(HasSubstr("Failed at commit"), HasSubstr(why)));
  // Not tried again at the same commit.
  w.MustReconcile(1);
  EXPECT_EQ(w.Live(1)->state, EnvState::kFailed);
  EXPECT_EQ(w.provider->Calls(M::kApply), 1);

  // A push starts a new apply with a fresh deadline.
  w.forge.Push(kRepo, 1, Sha(2));
  w.MustReconcile(1);
  EXPECT_EQ(w.provider->Calls(M::kApply), 2);
  w.provider->SetPhase(name, Phase::kProgressing, why);
  w.clock.Advance(std::chrono::minutes(9));
  w.MustReconcile(1);
  EXPECT_EQ(w.Live(1)->state, EnvState::kUpdating);
  EXPECT_EQ(w.Live(1)->reason, why);
  w.provider->SetPhase(name, Phase::kReady);
  w.MustReconcile(1);
  EXPECT_EQ(w.Live(1)->state, EnvState::kReady);
  EXPECT_EQ(w.Live(1)->reason, "");
}

TEST(ReconcilerTest, TheProgressDeadlineComesFromEphYaml) {
  World w(ConfigYaml() + "  progress_deadline: 2m\n");
  w.OpenPr(1);
  w.provider->SetPhaseAfterApply(Phase::kProgressing);
  w.MustReconcile(1);
  const std::string name = w.Live(1)->name;
  w.provider->SetPhase(name, Phase::kProgressing, "waiting for deployment api");
  w.clock.Advance(std::chrono::seconds(119));
  w.MustReconcile(1);
  EXPECT_EQ(w.Live(1)->state, EnvState::kProvisioning);
  w.clock.Advance(std::chrono::seconds(1));
  w.MustReconcile(1);
  EXPECT_EQ(w.Live(1)->state, EnvState::kFailed);
  EXPECT_THAT(w.Live(1)->reason, HasSubstr("not ready 2m after the apply began"));
}

TEST(ReconcilerTest, AnApplyThatStartedOnlyPartIsAppliedAgainAndNeverReadyBefore) {
  World w;
  w.OpenPr(1);
  // The provider starts part of the environment (a dependency is not healthy yet) and its
  // Observe already says ready for what runs: not ready while the rest waits.
  w.provider->SetNeedsReapply(2);
  ReconcileResult first = w.MustReconcile(1);
  std::optional<state::Environment> env = w.Live(1);
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->state, EnvState::kProvisioning);
  EXPECT_EQ(first.requeue_after, w.options.progress_poll);
  ReconcileResult second = w.MustReconcile(1);
  EXPECT_EQ(w.Live(1)->state, EnvState::kProvisioning);
  EXPECT_EQ(second.requeue_after, w.options.progress_poll);
  // Each pass applied again (no worker waited inside Apply); the third starts everything.
  w.MustReconcile(1);
  EXPECT_EQ(w.provider->Calls(M::kApply), 3);
  EXPECT_EQ(w.Live(1)->state, EnvState::kReady);
  // Converged: observing only.
  w.MustReconcile(1);
  EXPECT_EQ(w.provider->Calls(M::kApply), 3);
}

TEST(ReconcilerTest, APassWritesTheEnvironmentRowAtMostTwice) {
  World w;
  w.OpenPr(1);
  w.provider->SetPhaseAfterApply(Phase::kProgressing);
  w.MustReconcile(1);
  std::optional<state::Environment> env = w.Live(1);
  ASSERT_TRUE(env.has_value());
  // The insert, then one write of the outcome (and the forge's acknowledgement): version 2.
  EXPECT_EQ(env->version, 2);
  w.provider->SetPhase(env->name, Phase::kReady);
  w.MustReconcile(1);
  env = w.Live(1);
  EXPECT_EQ(env->state, EnvState::kReady);
  EXPECT_EQ(env->version, 3);
  // Nothing changed: no write at all.
  w.MustReconcile(1);
  EXPECT_EQ(w.Live(1)->version, 3);
}

TEST(ReconcilerTest, ReconcilingTwiceChangesNothing) {
  World w;
  w.OpenPr(7);
  w.MustReconcile(7);
  const state::Environment before = *w.Live(7);
  const int64_t events = w.EventCount();
  const int64_t writes = w.forge.Writes();
  const int64_t changes = w.ProviderCalls();

  for (int i = 0; i < 3; ++i) w.MustReconcile(7);

  const state::Environment after = *w.Live(7);
  EXPECT_EQ(after.version, before.version);  // not even a bookkeeping write
  EXPECT_EQ(after.state, EnvState::kReady);
  EXPECT_EQ(w.EventCount(), events);
  EXPECT_EQ(w.forge.Writes(), writes);
  EXPECT_EQ(w.ProviderCalls(), changes);
  EXPECT_EQ(w.History(7).size(), 1u);
}

TEST(ReconcilerTest, PushUpdatesTheEnvironment) {
  World w;
  w.OpenPr(3);
  w.MustReconcile(3);
  const std::string name = w.Live(3)->name;

  w.forge.Push(kRepo, 3, Sha(2));
  w.MustReconcile(3);

  std::optional<state::Environment> env = w.Live(3);
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->name, name);  // same environment, updated in place
  EXPECT_EQ(env->state, EnvState::kReady);
  EXPECT_EQ(env->head_sha, Sha(2));
  EXPECT_EQ(w.provider->Calls(M::kApply, name), 2);
  EXPECT_EQ(w.provider->LastApply(name)->head_sha, Sha(2));
  EXPECT_EQ(StatesOf(w, name),
            (std::vector<std::string>{"provisioning", "ready", "updating", "ready"}));
  // One deployment per deployed commit.
  std::vector<FakeForge::Deployment> deployments = w.forge.Deployments(kRepo);
  ASSERT_EQ(deployments.size(), 2u);
  EXPECT_EQ(deployments[1].request.ref, Sha(2));
  EXPECT_THAT(CommentFor(w, 3, name), HasSubstr(Sha(2).substr(0, 7)));
  EXPECT_EQ(w.forge.Comments(kRepo, 3).size(), 1u);
}

TEST(ReconcilerTest, LabelRemovedDestroysWithReason) {
  World w;
  w.OpenPr(5);
  w.MustReconcile(5);
  const std::string name = w.Live(5)->name;

  w.forge.RemoveLabel(kRepo, 5, "preview");
  w.MustReconcile(5);

  EXPECT_FALSE(w.Live(5).has_value());
  std::vector<state::Environment> history = w.History(5);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].state, EnvState::kDestroyed);
  EXPECT_EQ(history[0].reason, "label preview removed");
  EXPECT_FALSE(w.provider->Exists(name));
  EXPECT_THAT(CommentFor(w, 5, name), HasSubstr("Destroyed: label preview removed"));
  std::vector<FakeForge::Deployment> deployments = w.forge.Deployments(kRepo);
  ASSERT_EQ(deployments.size(), 1u);
  EXPECT_EQ(deployments[0].statuses.back().state, DeploymentState::kInactive);

  // Label back: a new environment (a new name: names are never reused).
  w.forge.AddLabel(kRepo, 5, "preview");
  w.MustReconcile(5);
  ASSERT_TRUE(w.Live(5).has_value());
  EXPECT_NE(w.Live(5)->name, name);
  EXPECT_EQ(w.Live(5)->state, EnvState::kReady);
}

class ClosedTest
    : public ::testing::TestWithParam<std::pair<forge::PullRequestState, std::string>> {};

TEST_P(ClosedTest, DestroysWithReason) {
  World w;
  w.OpenPr(9);
  w.MustReconcile(9);
  const std::string name = w.Live(9)->name;

  w.forge.SetState(kRepo, 9, GetParam().first);
  w.MustReconcile(9);

  EXPECT_FALSE(w.Live(9).has_value());
  EXPECT_EQ(w.History(9).back().reason, GetParam().second);
  EXPECT_FALSE(w.provider->Exists(name));
  EXPECT_EQ(StatesOf(w, name).back(), "destroyed");
  EXPECT_THAT(CommentFor(w, 9, name), HasSubstr(GetParam().second));

  // Nothing more happens for a closed pull request.
  const int64_t events = w.EventCount();
  w.MustReconcile(9);
  EXPECT_EQ(w.EventCount(), events);
  EXPECT_EQ(w.History(9).size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(MergedOrClosed, ClosedTest,
                         ::testing::Values(std::pair{forge::PullRequestState::kMerged,
                                                     std::string("pull request merged")},
                                           std::pair{forge::PullRequestState::kClosed,
                                                     std::string("pull request closed")}));

TEST(ReconcilerTest, DraftIsDestroyedUnlessTheTriggerIncludesDrafts) {
  World w;
  w.OpenPr(4);
  w.MustReconcile(4);
  w.forge.SetDraft(kRepo, 4, true);
  w.MustReconcile(4);
  EXPECT_FALSE(w.Live(4).has_value());
  EXPECT_EQ(w.History(4).back().reason, "pull request is a draft");

  World drafts(ConfigYaml("    include_drafts: true\n"));
  drafts.OpenPr(4);
  drafts.forge.SetDraft(kRepo, 4, true);
  drafts.MustReconcile(4);
  ASSERT_TRUE(drafts.Live(4).has_value());
  EXPECT_EQ(drafts.Live(4)->state, EnvState::kReady);
}

TEST(ReconcilerTest, ForksGetNoEnvironmentUnlessAllowed) {
  auto open_fork = [](World& w) {
    w.OpenPr(6);
    forge::PullRequest pr = *w.forge.GetPullRequest(kRepo, 6);
    pr.from_fork = true;
    w.forge.SetPullRequest(pr);
  };
  World w;
  open_fork(w);
  w.MustReconcile(6);
  EXPECT_TRUE(w.History(6).empty());
  EXPECT_EQ(w.AllProviderCalls(), 0);

  // The default branch allows forks: the fork's environment runs under the strict profile.
  World allowed;
  allowed.SetDefaultBranchConfig(ConfigYaml("", "  allow_forks: true\n"));
  open_fork(allowed);
  allowed.MustReconcile(6);
  ASSERT_TRUE(allowed.Live(6).has_value());
  EXPECT_EQ(allowed.Live(6)->state, EnvState::kReady);
  std::optional<providers::ApplyRequest> applied = allowed.provider->LastApply(allowed.Live(6)->name);
  ASSERT_TRUE(applied.has_value());
  EXPECT_TRUE(applied->restricted);
}

// Issue 16: the gates come from the default branch. A fork whose own eph.yaml sets
// `allow_forks: true` gets nothing, with or without an eph.yaml on the default branch.
TEST(ReconcilerTest, AForkCannotAllowItselfInItsOwnEphYaml) {
  for (bool base_config : {false, true}) {
    World w(ConfigYaml("", "  allow_forks: true\n"));
    if (base_config) w.SetDefaultBranchConfig(ConfigYaml());
    w.OpenPr(6);
    forge::PullRequest pr = *w.forge.GetPullRequest(kRepo, 6);
    pr.from_fork = true;
    w.forge.SetPullRequest(pr);
    w.MustReconcile(6);
    EXPECT_TRUE(w.History(6).empty()) << base_config;
    EXPECT_EQ(w.AllProviderCalls(), 0) << base_config;
  }
}

// A head that clones the provider's template database without the default branch's consent:
// the repository's own pull request gets a failed environment that says why; a fork the policy
// does not allow gets nothing at all.
TEST(ReconcilerTest, CloningTheTemplateNeedsTheDefaultBranchsConsent) {
  const std::string clone = ConfigYaml() +
                            "database:\n  instances:\n    - name: main\n      version: \"15\"\n"
                            "      template: {strategy: clone}\n";
  for (bool fork : {false, true}) {
    World w(clone);
    w.SetDefaultBranchConfig(ConfigYaml());
    w.OpenPr(12);
    forge::PullRequest pr = *w.forge.GetPullRequest(kRepo, 12);
    pr.from_fork = fork;
    w.forge.SetPullRequest(pr);
    w.MustReconcile(12);
    EXPECT_EQ(w.AllProviderCalls(), 0) << fork;
    if (fork) {
      EXPECT_TRUE(w.History(12).empty());
      continue;
    }
    ASSERT_TRUE(w.Live(12).has_value());
    EXPECT_EQ(w.Live(12)->state, EnvState::kFailed);
    EXPECT_THAT(w.Live(12)->reason, HasSubstr("clones the template database"));
  }
}

// The repository's own pull request cannot change its gates either once the default branch has
// an eph.yaml: its trigger label is the default branch's.
TEST(ReconcilerTest, TriggerLabelsComeFromTheDefaultBranch) {
  std::string mine = ConfigYaml();
  mine.replace(mine.find("[\"preview\"]"), std::string("[\"preview\"]").size(), "[\"mine\"]");
  World w(mine);
  w.SetDefaultBranchConfig(ConfigYaml());
  w.OpenPr(11, {"mine"});
  w.MustReconcile(11);
  EXPECT_TRUE(w.History(11).empty());
  w.forge.AddLabel(kRepo, 11, "preview");
  w.MustReconcile(11);
  ASSERT_TRUE(w.Live(11).has_value());
  std::optional<providers::ApplyRequest> applied = w.provider->LastApply(w.Live(11)->name);
  ASSERT_TRUE(applied.has_value());
  EXPECT_FALSE(applied->restricted);
}

TEST(ReconcilerTest, SkipLabelPreventsTheEnvironment) {
  World w(ConfigYaml("    skip_labels: [\"no-preview\"]\n"));
  w.OpenPr(8, {"preview", "no-preview"});
  w.MustReconcile(8);
  EXPECT_TRUE(w.History(8).empty());
  w.forge.RemoveLabel(kRepo, 8, "no-preview");
  w.MustReconcile(8);
  EXPECT_TRUE(w.Live(8).has_value());
  w.forge.AddLabel(kRepo, 8, "no-preview");
  w.MustReconcile(8);
  EXPECT_EQ(w.History(8).back().reason, "label no-preview added");
}

TEST(ReconcilerTest, PathsFilterUsesChangedFiles) {
  World w(ConfigYaml("    paths: [\"services/api/**\"]\n"));
  w.OpenPr(11);
  w.forge.SetChangedFiles(kRepo, 11, {"docs/readme.md"});
  w.MustReconcile(11);
  EXPECT_TRUE(w.History(11).empty());
  w.forge.SetChangedFiles(kRepo, 11, {"docs/readme.md", "services/api/main.go"});
  w.MustReconcile(11);
  EXPECT_TRUE(w.Live(11).has_value());
}

// The same world reconciled with keys in any order, duplicated, ends in the same state.
TEST(ReconcilerTest, DuplicateAndOutOfOrderKeysGiveTheSameOutcome) {
  using Outcome = std::map<int64_t, std::tuple<bool, std::string, std::string>>;
  auto run = [](const std::vector<int64_t>& order) {
    World w;
    w.OpenPr(1);                       // wants an environment
    w.OpenPr(2);                       // wants one, then loses its label
    w.OpenPr(3, {"preview"}, Sha(3));  // wants one, then is pushed to
    w.OpenPr(4, {});                   // never labelled
    for (int64_t pr : order) {
      if (pr == 2 && w.Live(2)) w.forge.RemoveLabel(kRepo, 2, "preview");
      if (pr == 3 && w.Live(3) && w.Live(3)->head_sha == Sha(3)) w.forge.Push(kRepo, 3, Sha(4));
      w.MustReconcile(pr);
    }
    // Level-triggered: one more pass over every key settles whatever the order left.
    for (int64_t pr : {1, 2, 3, 4}) w.MustReconcile(pr);
    Outcome out;
    for (int64_t pr : {1, 2, 3, 4}) {
      std::optional<state::Environment> live = w.Live(pr);
      out[pr] = {live.has_value(), live ? std::string(state::EnvStateName(live->state)) : "",
                 live ? live->head_sha : ""};
    }
    EXPECT_EQ(w.provider->MaxConcurrentPerEnvironment(), 1);
    return std::pair{out, static_cast<int64_t>(w.provider->Existing().size())};
  };
  const auto a = run({1, 2, 3, 4, 1, 2, 3});
  const auto b = run({4, 3, 3, 2, 1, 2, 1, 3, 3});
  const auto c = run({2, 2, 2, 3, 1, 4, 4, 3});
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(a.second, 2);  // #1 and #3 run somewhere
  EXPECT_EQ(std::get<2>(a.first.at(3)), Sha(4));
  EXPECT_FALSE(std::get<0>(a.first.at(2)));
  EXPECT_FALSE(std::get<0>(a.first.at(4)));
}

TEST(ReconcilerTest, WaitForChecksPendingThenSuccess) {
  World w(ConfigYaml("    wait_for_checks: [\"build\"]\n"));
  w.OpenPr(12);
  // Not reported yet: wait.
  ReconcileResult r = w.MustReconcile(12);
  EXPECT_TRUE(w.History(12).empty());
  EXPECT_EQ(r.requeue_after, w.options.checks_poll);
  // Running: still wait.
  w.forge.SetCheck(kRepo, Sha(1), "build", forge::CheckState::kPending);
  r = w.MustReconcile(12);
  EXPECT_TRUE(w.History(12).empty());
  EXPECT_EQ(r.requeue_after, w.options.checks_poll);
  EXPECT_EQ(w.AllProviderCalls(), 0);
  // Green: the environment appears.
  w.forge.SetCheck(kRepo, Sha(1), "build", forge::CheckState::kSuccess);
  w.MustReconcile(12);
  ASSERT_TRUE(w.Live(12).has_value());
  EXPECT_EQ(w.Live(12)->state, EnvState::kReady);
}

TEST(ReconcilerTest, WaitForChecksFailureMeansNoEnvironment) {
  World w(ConfigYaml("    wait_for_checks: [\"build\", \"lint\"]\n"));
  w.OpenPr(13);
  w.forge.SetCheck(kRepo, Sha(1), "build", forge::CheckState::kFailure);
  w.forge.SetCheck(kRepo, Sha(1), "lint", forge::CheckState::kSuccess);
  ReconcileResult r = w.MustReconcile(13);
  EXPECT_TRUE(w.History(13).empty());
  EXPECT_FALSE(r.requeue_after.has_value());  // nothing to wait for: a webhook brings news
  EXPECT_EQ(w.AllProviderCalls(), 0);
}

TEST(ReconcilerTest, WaitForChecksKeepsTheOldCommitWhilePendingAndDestroysOnFailure) {
  World w(ConfigYaml("    wait_for_checks: [\"build\"]\n"));
  w.OpenPr(14);
  w.forge.SetCheck(kRepo, Sha(1), "build", forge::CheckState::kSuccess);
  w.MustReconcile(14);
  const std::string name = w.Live(14)->name;

  w.forge.Push(kRepo, 14, Sha(2));
  w.forge.SetCheck(kRepo, Sha(2), "build", forge::CheckState::kPending);
  w.MustReconcile(14);
  EXPECT_EQ(w.Live(14)->state, EnvState::kReady);
  EXPECT_EQ(w.Live(14)->head_sha, Sha(1));  // keeps serving the last good commit

  w.forge.SetCheck(kRepo, Sha(2), "build", forge::CheckState::kFailure);
  w.MustReconcile(14);
  EXPECT_FALSE(w.Live(14).has_value());
  EXPECT_EQ(w.History(14).back().reason, "check build failed");
  EXPECT_FALSE(w.provider->Exists(name));
}

TEST(ReconcilerTest, BrokenConfigFailsWithTheErrorAndNeverCallsTheProvider) {
  World w(
      "version: \"1.0\"\nname: my-app\nenvironment:\n  tll: 72h\nkubernetes:\n"
      "  manifests: [./k8s]\n");
  w.OpenPr(15);
  w.MustReconcile(15);

  std::optional<state::Environment> env = w.Live(15);
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->state, EnvState::kFailed);
  EXPECT_THAT(env->reason, AllOf(HasSubstr("eph.yaml:4:3"), HasSubstr("tll")));
  EXPECT_EQ(env->head_sha, Sha(1));
  EXPECT_EQ(w.AllProviderCalls(), 0);
  EXPECT_THAT(CommentFor(w, 15, env->name), AllOf(HasSubstr("Failed"), HasSubstr("tll")));
  EXPECT_TRUE(w.forge.Deployments(kRepo).empty());  // nothing was deployed
  // The error at its line, as a check on the commit.
  std::vector<forge::ConfigCheck> checks = w.forge.ConfigChecks(kRepo, Sha(1));
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_FALSE(checks[0].ok);
  ASSERT_EQ(checks[0].annotations.size(), 1u);
  EXPECT_EQ(checks[0].annotations[0].path, "eph.yaml");
  EXPECT_EQ(checks[0].annotations[0].start_line, 4);
  EXPECT_THAT(checks[0].annotations[0].message, HasSubstr("tll"));

  // Not retried while the commit stays the same.
  const int64_t events = w.EventCount();
  const int64_t reads = w.forge.Calls(FakeForge::Method::kReadFile);
  const int64_t version = env->version;
  w.MustReconcile(15);
  EXPECT_EQ(w.EventCount(), events);
  EXPECT_EQ(w.forge.Calls(FakeForge::Method::kReadFile), reads);
  EXPECT_EQ(w.Live(15)->version, version);
  EXPECT_EQ(w.AllProviderCalls(), 0);
  EXPECT_EQ(w.forge.ConfigChecks(kRepo, Sha(1)).size(), 1u);

  // A push that fixes eph.yaml brings the environment up.
  w.forge.Push(kRepo, 15, Sha(2));
  w.forge.SetFile(kRepo, Sha(2), "eph.yaml", ConfigYaml());
  w.MustReconcile(15);
  ASSERT_TRUE(w.Live(15).has_value());
  EXPECT_EQ(w.Live(15)->name, env->name);
  EXPECT_EQ(w.Live(15)->state, EnvState::kReady);
  EXPECT_EQ(w.Live(15)->reason, "");
}

TEST(ReconcilerTest, BrokenConfigOnAnUnlabelledPullRequestIsCheckedOncePerCommit) {
  World w("version: \"1.0\"\nname: my-app\nkubernetes:\n  manifestz: [./k8s]\n");
  w.OpenPr(16, {});
  for (int i = 0; i < 3; ++i) w.MustReconcile(16);  // every webhook of the PR runs a pass
  EXPECT_FALSE(w.Live(16).has_value());
  std::vector<forge::ConfigCheck> checks = w.forge.ConfigChecks(kRepo, Sha(1));
  ASSERT_EQ(checks.size(), 1u) << "one check run per commit, not one per pass";
  EXPECT_FALSE(checks[0].ok);
  // A new commit, still broken: its own check.
  w.forge.Push(kRepo, 16, Sha(2));
  w.forge.SetFile(kRepo, Sha(2), "eph.yaml", "version: \"1.0\"\nname: [\n");
  w.MustReconcile(16);
  w.MustReconcile(16);
  EXPECT_EQ(w.forge.ConfigChecks(kRepo, Sha(2)).size(), 1u);
}

TEST(ReconcilerTest, MissingConfigWithLabelFailsVisibly) {
  World w;
  w.OpenPr(16);
  w.forge.RemoveFile(kRepo, Sha(1), "eph.yaml");
  w.MustReconcile(16);
  ASSERT_TRUE(w.Live(16).has_value());
  EXPECT_EQ(w.Live(16)->state, EnvState::kFailed);
  EXPECT_EQ(w.Live(16)->reason, "eph.yaml: not found at commit " + Sha(1).substr(0, 7));

  // Without the label nothing is created.
  World unlabelled;
  unlabelled.OpenPr(16, {});
  unlabelled.forge.RemoveFile(kRepo, Sha(1), "eph.yaml");
  unlabelled.MustReconcile(16);
  EXPECT_TRUE(unlabelled.History(16).empty());
}

TEST(ReconcilerTest, BrokenConfigOnAPushFailsTheRunningEnvironmentWithoutTouchingIt) {
  World w;
  w.OpenPr(17);
  w.MustReconcile(17);
  const std::string name = w.Live(17)->name;
  w.forge.Push(kRepo, 17, Sha(2));
  w.forge.SetFile(kRepo, Sha(2), "eph.yaml", "name: [\n");
  w.MustReconcile(17);
  EXPECT_EQ(w.Live(17)->state, EnvState::kFailed);
  EXPECT_EQ(w.provider->Calls(M::kApply), 1);
  EXPECT_TRUE(w.provider->Exists(name));  // the last good commit keeps running
  // Its label removed: destroyed, although its config is broken.
  w.forge.RemoveLabel(kRepo, 17, "preview");
  w.MustReconcile(17);
  EXPECT_FALSE(w.Live(17).has_value());
  EXPECT_FALSE(w.provider->Exists(name));
}

TEST(ReconcilerTest, TransientErrorsLeaveEverythingForTheRetry) {
  World w;
  w.OpenPr(18);
  w.forge.FailNext(FakeForge::Method::kGetPullRequest, absl::UnavailableError("github down"));
  absl::StatusOr<ReconcileResult> r = w.Reconcile(18);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(w.History(18).empty());

  w.provider->FailNext(M::kApply, absl::UnavailableError("apiserver unreachable"));
  r = w.Reconcile(18);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(w.Live(18).has_value());
  EXPECT_EQ(w.Live(18)->state, EnvState::kProvisioning);

  w.MustReconcile(18);
  EXPECT_EQ(w.Live(18)->state, EnvState::kReady);
  EXPECT_EQ(w.History(18).size(), 1u);
}

TEST(ReconcilerTest, ForgeWriteFailureIsRetriedWithoutDuplicates) {
  World w;
  w.OpenPr(19);
  w.forge.FailNext(FakeForge::Method::kSetDeploymentStatus, absl::UnavailableError("502"));
  EXPECT_EQ(w.Reconcile(19).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(w.Live(19)->state, EnvState::kReady);
  w.MustReconcile(19);
  ASSERT_EQ(w.forge.Deployments(kRepo).size(), 1u);  // the id was kept: no second deployment
  EXPECT_EQ(DeploymentStates(w.forge.Deployments(kRepo)[0]),
            std::vector{DeploymentState::kSuccess});
  EXPECT_EQ(w.forge.Comments(kRepo, 19).size(), 1u);
}

TEST(ReconcilerTest, ForgeRefusingTheCommentDoesNotFailTheEnvironment) {
  World w;
  w.OpenPr(31);
  w.forge.FailNext(FakeForge::Method::kUpsertComment,
                   absl::PermissionDeniedError("Resource not accessible by integration"));
  w.MustReconcile(31);  // not an error: nothing to retry in a loop
  EXPECT_EQ(w.Live(31)->state, EnvState::kReady);
  EXPECT_TRUE(w.forge.Comments(kRepo, 31).empty());
  // The next pass (a webhook, the resync) tries the comment again.
  w.MustReconcile(31);
  EXPECT_EQ(w.forge.Comments(kRepo, 31).size(), 1u);
  EXPECT_EQ(w.forge.Deployments(kRepo).size(), 1u);
}

TEST(ReconcilerTest, TerminalProviderErrorFailsTheEnvironmentUntilTheNextPush) {
  World w;
  w.OpenPr(20);
  w.provider->FailNext(M::kApply, absl::InvalidArgumentError("Deployment api: bad image"));
  w.MustReconcile(20);
  std::optional<state::Environment> env = w.Live(20);
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->state, EnvState::kFailed);
  EXPECT_EQ(env->reason, "apply failed: Deployment api: bad image");

  w.MustReconcile(20);
  EXPECT_EQ(w.provider->Calls(M::kApply), 1);  // same commit: not tried again

  w.forge.Push(kRepo, 20, Sha(2));
  w.MustReconcile(20);
  EXPECT_EQ(w.provider->Calls(M::kApply), 2);
  EXPECT_EQ(w.Live(20)->state, EnvState::kReady);
}

TEST(ReconcilerTest, ProviderReportedFailureRecoversWhenItBecomesReady) {
  World w;
  w.OpenPr(21);
  w.MustReconcile(21);
  const std::string name = w.Live(21)->name;
  w.provider->SetPhase(name, Phase::kFailed, "api: CrashLoopBackOff");
  w.MustReconcile(21);
  EXPECT_EQ(w.Live(21)->state, EnvState::kFailed);
  EXPECT_EQ(w.Live(21)->reason, "api: CrashLoopBackOff");
  w.provider->SetPhase(name, Phase::kReady);
  w.MustReconcile(21);
  EXPECT_EQ(w.Live(21)->state, EnvState::kReady);
  EXPECT_EQ(w.Live(21)->reason, "");
  EXPECT_EQ(w.provider->Calls(M::kApply), 1);
}

TEST(ReconcilerTest, VanishedObjectsAreAppliedAgain) {
  World w;
  w.OpenPr(22);
  w.MustReconcile(22);
  const std::string name = w.Live(22)->name;
  ASSERT_TRUE(w.provider->Destroy({name, "eph-" + name})->done);  // someone deleted it
  w.MustReconcile(22);
  EXPECT_TRUE(w.provider->Exists(name));
  EXPECT_EQ(w.Live(22)->state, EnvState::kReady);
  EXPECT_EQ(w.provider->Calls(M::kApply, name), 2);
}

// One component removed by hand while the rest stays: the provider still reports the
// environment, but not all that Apply said it made. Applied again, once.
TEST(ReconcilerTest, AComponentRemovedBehindEphsBackIsAppliedAgain) {
  World w;
  w.OpenPr(23);
  w.MustReconcile(23);
  const std::string name = w.Live(23)->name;
  EXPECT_EQ(ParseEnvRecord(w.Live(23)->spec_json).components, std::vector<std::string>{"app"});
  w.MustReconcile(23);
  EXPECT_EQ(w.provider->Calls(M::kApply, name), 1);  // all there: only observed
  w.provider->LoseComponent(name);
  w.MustReconcile(23);
  EXPECT_EQ(w.provider->Calls(M::kApply, name), 2);
  EXPECT_EQ(w.Live(23)->state, EnvState::kReady);
  w.MustReconcile(23);
  EXPECT_EQ(w.provider->Calls(M::kApply, name), 2);
}

TEST(ReconcilerTest, TtlExpiryDestroysAndDoesNotRecreateUntilAPush) {
  World w;
  w.OpenPr(23);
  w.MustReconcile(23);
  const std::string name = w.Live(23)->name;

  w.clock.Advance(hours(72) - minutes(1));
  w.store->TouchEnvironment(name, w.clock.Now()).IgnoreError();
  w.MustReconcile(23);
  EXPECT_EQ(w.Live(23)->state, EnvState::kReady);

  w.clock.Advance(minutes(1));
  w.MustReconcile(23);
  EXPECT_FALSE(w.Live(23).has_value());
  EXPECT_EQ(w.History(23).back().reason, "ttl expired");
  EXPECT_FALSE(w.provider->Exists(name));
  EXPECT_THAT(CommentFor(w, 23, name), HasSubstr("Push a new commit"));

  // Still labelled, same commit: stays gone.
  w.MustReconcile(23);
  w.MustReconcile(23);
  EXPECT_EQ(w.History(23).size(), 1u);

  // A push brings a fresh environment with a fresh TTL.
  w.forge.Push(kRepo, 23, Sha(2));
  w.MustReconcile(23);
  ASSERT_TRUE(w.Live(23).has_value());
  EXPECT_NE(w.Live(23)->name, name);
  EXPECT_EQ(*w.Live(23)->expires_at, w.clock.Now() + hours(72));
}

TEST(ReconcilerTest, ExpiredEnvironmentComesBackWhenTheLabelIsReadded) {
  World w;
  w.OpenPr(24);
  w.MustReconcile(24);
  w.clock.Advance(hours(73));
  w.MustReconcile(24);
  ASSERT_FALSE(w.Live(24).has_value());

  w.forge.RemoveLabel(kRepo, 24, "preview");
  w.MustReconcile(24);
  EXPECT_FALSE(w.Live(24).has_value());
  w.forge.AddLabel(kRepo, 24, "preview");
  w.MustReconcile(24);
  ASSERT_TRUE(w.Live(24).has_value());
  EXPECT_EQ(w.Live(24)->state, EnvState::kReady);
}

TEST(ReconcilerTest, IdleTimeoutCountsFromLastActivity) {
  World w;
  w.OpenPr(25);
  ReconcileResult r = w.MustReconcile(25);
  const std::string name = w.Live(25)->name;
  EXPECT_EQ(r.requeue_after, hours(4));  // the next deadline: idle before TTL

  w.clock.Advance(hours(3));
  ASSERT_TRUE(w.store->TouchEnvironment(name, w.clock.Now()).ok());
  w.clock.Advance(hours(3));  // 6h since creation, 3h since the last request
  r = w.MustReconcile(25);
  EXPECT_EQ(w.Live(25)->state, EnvState::kReady);
  EXPECT_EQ(r.requeue_after, hours(1));

  w.clock.Advance(hours(1));
  w.MustReconcile(25);
  EXPECT_FALSE(w.Live(25).has_value());
  EXPECT_EQ(w.History(25).back().reason, "idle for 4h");
  EXPECT_FALSE(w.provider->Exists(name));
}

TEST(ReconcilerTest, IdleTimeoutWithoutActivityCountsFromTheLastChange) {
  World w;
  w.OpenPr(26);
  w.MustReconcile(26);
  w.clock.Advance(hours(3));
  w.forge.Push(kRepo, 26, Sha(2));  // an update is activity too
  w.MustReconcile(26);
  w.clock.Advance(hours(3));
  w.MustReconcile(26);
  EXPECT_TRUE(w.Live(26).has_value());
  w.clock.Advance(hours(1));
  w.MustReconcile(26);
  EXPECT_FALSE(w.Live(26).has_value());
  EXPECT_EQ(w.History(26).back().reason, "idle for 4h");
}

TEST(ReconcilerTest, DestroyInProgressIsRequeuedUntilDone) {
  World w;
  w.OpenPr(27);
  w.MustReconcile(27);
  const std::string name = w.Live(27)->name;
  w.provider->SetDestroyPending(1);
  w.forge.SetState(kRepo, 27, forge::PullRequestState::kMerged);
  ReconcileResult r = w.MustReconcile(27);
  EXPECT_EQ(w.Live(27)->state, EnvState::kDestroying);
  EXPECT_EQ(r.requeue_after, w.options.destroy_poll);
  EXPECT_THAT(CommentFor(w, 27, name), HasSubstr("Being destroyed: pull request merged"));
  w.MustReconcile(27);
  EXPECT_FALSE(w.Live(27).has_value());
  EXPECT_EQ(w.History(27).back().reason, "pull request merged");
}

TEST(ReconcilerTest, DeletedThroughTheApiIsFinishedAndNotRecreatedAtTheSameCommit) {
  World w;
  w.OpenPr(28);
  w.MustReconcile(28);
  state::Environment env = *w.Live(28);
  env.state = EnvState::kDestroying;  // what DELETE /api/v1/environments/{name} does
  env.reason = "destroyed on request through the API";
  ASSERT_TRUE(w.store->UpdateEnvironment(env).ok());

  w.MustReconcile(28);
  EXPECT_FALSE(w.Live(28).has_value());
  EXPECT_EQ(w.History(28).back().reason, "destroyed on request through the API");
  EXPECT_FALSE(w.provider->Exists(env.name));
  w.MustReconcile(28);
  EXPECT_EQ(w.History(28).size(), 1u);
  w.forge.Push(kRepo, 28, Sha(2));
  w.MustReconcile(28);
  EXPECT_EQ(w.History(28).size(), 2u);
}

TEST(ReconcilerTest, ProviderNotEnabledIsATerminalFailure) {
  World w("version: \"1.0\"\nname: my-app\ndocker:\n  compose_file: compose.yml\n");
  w.OpenPr(29);
  w.MustReconcile(29);
  ASSERT_TRUE(w.Live(29).has_value());
  EXPECT_EQ(w.Live(29)->state, EnvState::kFailed);
  EXPECT_EQ(w.Live(29)->reason, "provider docker is not enabled on this ephd");
  EXPECT_EQ(w.AllProviderCalls(), 0);
}

TEST(ReconcilerTest, RecordTerminalFailureMarksTheEnvironmentFailed) {
  World w;
  w.OpenPr(30);
  w.MustReconcile(30);
  ASSERT_TRUE(w.reconciler
                  ->RecordTerminalFailure(PullRequestKey(kRepo, 30),
                                          absl::FailedPreconditionError("quota exceeded"))
                  .ok());
  EXPECT_EQ(w.Live(30)->state, EnvState::kFailed);
  EXPECT_EQ(w.Live(30)->reason, "quota exceeded");
  // Same commit: the next pass does not try again.
  w.MustReconcile(30);
  EXPECT_EQ(w.Live(30)->state, EnvState::kFailed);
  EXPECT_EQ(w.provider->Calls(M::kApply), 1);
  // No environment: nothing to record, not an error.
  EXPECT_TRUE(
      w.reconciler
          ->RecordTerminalFailure(PullRequestKey(kRepo, 999), absl::InvalidArgumentError("x"))
          .ok());
}

// A person's comment on pull request `pr`, as the intake stores it.
void Comment(World& w, int64_t pr, int64_t comment_id, const std::string& user,
             const std::string& body) {
  nlohmann::json payload = {
      {"action", "created"},
      {"issue", {{"number", pr}, {"pull_request", nlohmann::json::object()}}},
      {"comment", {{"id", comment_id}, {"body", body}, {"user", {{"login", user}, {"type", "User"}}}}}};
  state::Delivery d;
  d.id = "comment-" + std::to_string(comment_id);
  d.forge = "github";
  d.event = "issue_comment";
  d.action = "created";
  d.repo = kRepo;
  d.pr_number = pr;
  d.body = payload.dump();
  d.received_at = w.clock.Now();
  // As GitHub's decoder stores it at intake (pkg/webhook/github_events.cc).
  d.kind = state::kDeliveryComment;
  d.comment_id = comment_id;
  d.author = user;
  d.text = body;
  ASSERT_TRUE(w.store->RecordDelivery(d, PullRequestKey(kRepo, pr)).ok());
}

TEST(ReconcilerCommandsTest, ExtendKeepAndDownFromAWriterActOnceEach) {
  World w;
  w.OpenPr(60);
  w.MustReconcile(60);
  const state::Environment created = *w.Live(60);
  w.forge.GrantWrite(kRepo, "alice");
  EXPECT_THAT(CommentFor(w, 60, created.name), HasSubstr("Expires "));

  w.clock.Advance(hours(1));
  Comment(w, 60, 1001, "alice", "/eph extend 24h");
  w.MustReconcile(60);
  EXPECT_EQ(*w.Live(60)->expires_at, *created.expires_at + hours(24));
  EXPECT_THAT(CommentFor(w, 60, created.name),
              HasSubstr("Last command: `/eph extend 24h` from @alice: now expires"));
  // Handled once: another pass does not extend again.
  w.MustReconcile(60);
  w.MustReconcile(60);
  EXPECT_EQ(*w.Live(60)->expires_at, *created.expires_at + hours(24));

  Comment(w, 60, 1002, "alice", "/eph keep");
  w.MustReconcile(60);
  EXPECT_FALSE(w.Live(60)->expires_at.has_value());
  EXPECT_THAT(CommentFor(w, 60, created.name), HasSubstr("Kept: no TTL"));
  w.clock.Advance(hours(24 * 30));
  w.store->TouchEnvironment(created.name, w.clock.Now()).IgnoreError();
  w.MustReconcile(60);
  ASSERT_TRUE(w.Live(60).has_value()) << "kept: the TTL never ends it";

  Comment(w, 60, 1003, "alice", "thanks!\n/eph down");
  w.MustReconcile(60);
  w.MustReconcile(60);
  EXPECT_FALSE(w.Live(60).has_value());
  EXPECT_EQ(w.History(60).back().reason, "`/eph down` from @alice");
  EXPECT_FALSE(w.provider->Exists(created.name));
  // Still labelled, same commit: it stays down.
  w.MustReconcile(60);
  EXPECT_EQ(w.History(60).size(), 1u);

  // `/eph redeploy` brings a new one at the same commit.
  Comment(w, 60, 1004, "alice", "/eph redeploy");
  w.MustReconcile(60);
  ASSERT_TRUE(w.Live(60).has_value());
  EXPECT_NE(w.Live(60)->name, created.name);
  EXPECT_EQ(w.Live(60)->state, EnvState::kReady);
  EXPECT_THAT(CommentFor(w, 60, created.name), HasSubstr("a new environment will be created"));
}

TEST(ReconcilerCommandsTest, CommandsFromUsersWithoutWriteAccessAreIgnoredAndSaidSo) {
  World w;
  w.OpenPr(61);
  w.MustReconcile(61);
  const state::Environment env = *w.Live(61);
  Comment(w, 61, 2001, "mallory", "/eph down");
  w.MustReconcile(61);
  ASSERT_TRUE(w.Live(61).has_value());
  EXPECT_EQ(w.Live(61)->state, EnvState::kReady);
  EXPECT_THAT(CommentFor(w, 61, env.name),
              HasSubstr("`/eph down` from @mallory was ignored: commands need write access"));
  EXPECT_EQ(w.forge.Calls(FakeForge::Method::kCanWrite), 1);
  w.MustReconcile(61);
  EXPECT_EQ(w.forge.Calls(FakeForge::Method::kCanWrite), 1) << "asked once per comment";
}

TEST(ReconcilerCommandsTest, RedeployAppliesTheSameCommitAgainAndRetriesAFailure) {
  World w;
  w.OpenPr(62);
  w.provider->FailNext(M::kApply, absl::InvalidArgumentError("image pull failed"));
  w.MustReconcile(62);
  ASSERT_EQ(w.Live(62)->state, EnvState::kFailed);
  const int64_t applies = w.provider->Calls(M::kApply);
  w.MustReconcile(62);
  EXPECT_EQ(w.provider->Calls(M::kApply), applies) << "a failure waits for a change";

  w.forge.GrantWrite(kRepo, "alice");
  Comment(w, 62, 3001, "alice", "/eph redeploy");
  w.MustReconcile(62);
  EXPECT_EQ(w.provider->Calls(M::kApply), applies + 1);
  EXPECT_EQ(w.Live(62)->state, EnvState::kReady);
  EXPECT_THAT(CommentFor(w, 62, w.Live(62)->name), HasSubstr("redeploying"));
}

// Issue 13: a command ran through its intent, which also enqueued the pull request's key while
// the pass that ran it held that key, so every command cost a second pass that found nothing to
// do. The pass carries the command out itself and nothing is queued after it.
TEST(ReconcilerCommandsTest, ACommandCostsOnePass) {
  World w;
  w.OpenPr(62);
  w.MustReconcile(62);
  w.forge.GrantWrite(kRepo, "alice");
  auto drain = [&] {
    for (;;) {
      absl::StatusOr<std::optional<state::Lease>> lease =
          w.store->ClaimWork("test", w.clock.Now(), hours(1));
      ASSERT_TRUE(lease.ok()) << lease.status();
      if (!lease->has_value()) return;
      ASSERT_TRUE(w.store->CompleteWork(**lease, w.clock.Now()).ok());
    }
  };
  drain();
  const int64_t applies = w.provider->Calls(M::kApply);
  int64_t id = 3001;
  for (const char* command : {"/eph keep", "/eph redeploy", "/eph down"}) {
    Comment(w, 62, id++, "alice", command);
    drain();  // the comment's delivery queued the pass that runs it: this one
    w.MustReconcile(62);
    EXPECT_EQ(*w.store->QueueDepth(), 0) << command << " queued a second pass";
  }
  EXPECT_EQ(w.provider->Calls(M::kApply), applies + 1) << "redeploy applied in its own pass";
  EXPECT_NE(w.History(62).back().state, EnvState::kReady) << "down carried out in its own pass";
}

// Issue 13: `/eph extend` capped one command at 366 days but not the total, so repeated
// commands went on for ever, while the API refused more than 100 years. Both follow
// lifecycle.h now: an environment expires at most 366 days from now.
TEST(ReconcilerCommandsTest, ExtendFollowsTheOneExtendPolicy) {
  World w;
  w.OpenPr(61);
  w.MustReconcile(61);
  const state::Environment created = *w.Live(61);  // eph.yaml ttl: 72h
  w.forge.GrantWrite(kRepo, "alice");
  Comment(w, 61, 2001, "alice", "/eph extend 8712h");  // 363 days: 366 days from now in all
  w.MustReconcile(61);
  EXPECT_EQ(*w.Live(61)->expires_at, *created.expires_at + hours(8712));
  Comment(w, 61, 2002, "alice", "/eph extend 1h");
  w.MustReconcile(61);
  EXPECT_EQ(*w.Live(61)->expires_at, *created.expires_at + hours(8712)) << "past 366 days";
  EXPECT_THAT(CommentFor(w, 61, created.name), HasSubstr("more than 366 days from now"));
}

TEST(ReconcilerCommandsTest, MistakesAreExplainedAndATransientPermissionErrorRetries) {
  World w;
  w.OpenPr(63);
  w.MustReconcile(63);
  const std::string name = w.Live(63)->name;
  w.forge.GrantWrite(kRepo, "alice");
  Comment(w, 63, 4001, "alice", "/eph extend forever");
  w.MustReconcile(63);
  EXPECT_THAT(CommentFor(w, 63, name), HasSubstr("was not understood"));

  Comment(w, 63, 4002, "alice", "/eph keep");
  w.forge.FailNext(FakeForge::Method::kCanWrite, absl::UnavailableError("GitHub is down"));
  EXPECT_FALSE(w.Reconcile(63).ok());
  EXPECT_TRUE(w.Live(63)->expires_at.has_value());
  w.MustReconcile(63);
  EXPECT_FALSE(w.Live(63)->expires_at.has_value());
}

TEST(ReconcilerCommandsTest, ACommandWrittenBeforeTheEnvironmentExistedIsNotApplied) {
  World w;
  w.forge.GrantWrite(kRepo, "alice");
  w.OpenPr(64, {});
  Comment(w, 64, 5001, "alice", "/eph down");
  w.MustReconcile(64);
  w.clock.Advance(minutes(1));
  w.forge.AddLabel(kRepo, 64, "preview");
  w.MustReconcile(64);
  ASSERT_TRUE(w.Live(64).has_value());
  EXPECT_EQ(w.Live(64)->state, EnvState::kReady);
}

TEST(ReconcilerTest, PublicUrlFollowsTheTemplateAndTheBackendIsRecordedForTheGateway) {
  World w;
  w.options.lifecycle.url_template = "http://{host}:8081";
  w.reconciler = std::make_unique<EnvironmentReconciler>(*w.store, w.forge, w.registry, w.clock,
                                                         w.random, w.options);
  w.OpenPr(65);
  w.MustReconcile(65);
  const std::string name = w.Live(65)->name;
  EXPECT_EQ(w.Live(65)->url, "http://" + name + "." + kBaseDomain + ":8081");
  EXPECT_EQ(w.Live(65)->backend_url, "");
  // The provider's own address (a Docker port) moves: the record follows, the public URL stays.
  w.provider->SetUrl(name, "http://127.0.0.1:41234");
  w.MustReconcile(65);
  EXPECT_EQ(w.Live(65)->backend_url, "http://127.0.0.1:41234");
  EXPECT_EQ(w.Live(65)->url, "http://" + name + "." + kBaseDomain + ":8081");
}

// Records what the reconciler asks of the database module; scripted failures.
class FakeDatabases final : public EnvironmentDatabases {
 public:
  absl::StatusOr<std::map<std::string, std::string>> Ensure(
      const std::string& environment, const std::string& key, const std::string& project,
      const std::string& source_dir, const config::DatabaseInstance& instance,
      const DatabaseServerAccess* server) override {
    ++ensures;
    keys.push_back(key);
    last_server = server == nullptr ? "" : server->admin_url;
    last_project = project;
    last_scripts = instance.seed_scripts;
    source_seen = !source_dir.empty();
    if (!fail_next.ok()) {
      absl::Status s = fail_next;
      fail_next = absl::OkStatus();
      return s;
    }
    existing.insert(environment);
    const std::string db = key.empty() ? environment : environment + "_" + key;
    return std::map<std::string, std::string>{
        {"DATABASE_URL", "postgres://" + db + ":pw@db:5432/" + db}, {"PGDATABASE", db}};
  }
  absl::Status Drop(const std::string& environment) override {
    ++drops;
    existing.erase(environment);
    return absl::OkStatus();
  }
  absl::StatusOr<std::set<std::string>> EnvironmentsWithDatabases() override { return existing; }

  int ensures = 0, drops = 0;
  bool source_seen = false;
  std::string last_project;
  std::string last_server;  // "" for the shared server
  std::vector<std::string> last_scripts;
  std::vector<std::string> keys;  // of every Ensure, in order
  std::set<std::string> existing;
  absl::Status fail_next;
};

// Rebuilds the world's reconciler with `databases` as its database module.
void UseDatabases(World& w, FakeDatabases& databases) {
  w.options.databases = &databases;
  w.reconciler = std::make_unique<EnvironmentReconciler>(*w.store, w.forge, w.registry, w.clock,
                                                         w.random, w.options);
}

std::string DatabaseConfig() {
  return ConfigYaml() +
         "database:\n"
         "  instances:\n"
         "    - name: main\n"
         "      version: \"15\"\n"
         "      template:\n"
         "        strategy: seed\n"
         "        seed:\n"
         "          scripts: [db/schema.sql]\n";
}

TEST(ReconcilerDatabaseTest, TheAppGetsItsDatabaseSettingsAndDestroyDropsTheDatabase) {
  World w(DatabaseConfig());
  FakeDatabases databases;
  UseDatabases(w, databases);
  w.OpenPr(70);
  w.MustReconcile(70);
  const state::Environment env = *w.Live(70);
  EXPECT_EQ(env.state, EnvState::kReady);
  EXPECT_EQ(databases.ensures, 1);
  EXPECT_TRUE(databases.source_seen);
  EXPECT_EQ(databases.last_project, kRepo);
  EXPECT_EQ(databases.last_scripts, std::vector<std::string>{"db/schema.sql"});
  std::optional<providers::ApplyRequest> applied = w.provider->LastApply(env.name);
  ASSERT_TRUE(applied.has_value());
  EXPECT_EQ(applied->secret_env.at("DATABASE_URL"),
            "postgres://" + env.name + ":pw@db:5432/" + env.name);
  // The only database keeps the environment's own name, and is also there by its instance's.
  EXPECT_EQ(databases.keys, std::vector<std::string>{""});
  EXPECT_EQ(applied->secret_env.at("MAIN_DATABASE_URL"), applied->secret_env.at("DATABASE_URL"));
  // Never in what people see.
  EXPECT_THAT(CommentFor(w, 70, env.name), Not(HasSubstr("pw@")));
  EXPECT_THAT(env.spec_json, Not(HasSubstr("pw@")));

  w.forge.SetState(kRepo, 70, forge::PullRequestState::kClosed);
  w.MustReconcile(70);
  w.MustReconcile(70);
  EXPECT_FALSE(w.Live(70).has_value());
  EXPECT_EQ(databases.drops, 1);
  EXPECT_TRUE(databases.existing.empty());
}

TEST(ReconcilerDatabaseTest, AServerOfItsOwnStartsFirstThenTheDatabaseThenTheApp) {
  const std::string config = ConfigYaml() +
                             "database:\n"
                             "  instances:\n"
                             "    - name: pg\n"
                             "      version: \"15\"\n"
                             "      placement: environment\n";
  World w(config);
  FakeDatabases databases;
  UseDatabases(w, databases);
  w.provider->SetDatabaseServerPending(2);
  w.OpenPr(73);
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<ReconcileResult> waiting = w.Reconcile(73);
    ASSERT_TRUE(waiting.ok()) << waiting.status();
    EXPECT_EQ(waiting->requeue_after, w.options.progress_poll);
    EXPECT_THAT(waiting->summary, HasSubstr("database `pg`: starting"));
  }
  EXPECT_EQ(databases.ensures, 0);
  EXPECT_EQ(w.provider->Calls(M::kApply), 0);
  EXPECT_EQ(w.Live(73)->state, EnvState::kProvisioning);

  w.MustReconcile(73);
  const state::Environment env = *w.Live(73);
  EXPECT_EQ(env.state, EnvState::kReady);
  std::optional<providers::DatabaseServerRequest> server = w.provider->LastDatabaseServer(env.name);
  ASSERT_TRUE(server.has_value());
  EXPECT_EQ(server->name, "pg");
  EXPECT_EQ(server->image, "postgres:15");
  EXPECT_EQ(server->labels.at(providers::kEnvironmentLabel), env.name);
  EXPECT_EQ(databases.ensures, 1);
  EXPECT_EQ(databases.last_server, providers::kFakeDatabaseAdminUrl);
  ASSERT_TRUE(w.provider->LastApply(env.name).has_value());
  EXPECT_TRUE(w.provider->LastApply(env.name)->secret_env.count("DATABASE_URL"));
  EXPECT_THAT(env.spec_json, Not(HasSubstr("fake-server-secret")));
  EXPECT_THAT(CommentFor(w, 73, env.name), Not(HasSubstr("fake-server-secret")));

  // The server goes with the environment: nothing to drop on the shared one.
  w.forge.SetState(kRepo, 73, forge::PullRequestState::kClosed);
  w.MustReconcile(73);
  w.MustReconcile(73);
  EXPECT_FALSE(w.Live(73).has_value());
  EXPECT_EQ(databases.drops, 0);
}

TEST(ReconcilerDatabaseTest, SeveralDatabasesEachGetTheirOwnSettingsAndTheFirstIsTheDefault) {
  const std::string config = ConfigYaml() +
                             "database:\n"
                             "  instances:\n"
                             "    - {name: main, version: \"15\"}\n"
                             "    - {name: job-queue, version: \"16\", placement: environment}\n"
                             "    - {name: analytics, version: \"15\"}\n";
  World w(config);
  FakeDatabases databases;
  UseDatabases(w, databases);
  w.provider->SetDatabaseServerPending(1);
  w.OpenPr(75);
  // The own server is started first; nothing else happens until it is ready.
  absl::StatusOr<ReconcileResult> waiting = w.Reconcile(75);
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_THAT(waiting->summary, HasSubstr("database `job-queue`: starting"));
  EXPECT_EQ(databases.ensures, 0);
  w.MustReconcile(75);
  const state::Environment env = *w.Live(75);
  EXPECT_EQ(env.state, EnvState::kReady);
  EXPECT_EQ(databases.keys, (std::vector<std::string>{"main", "job-queue", "analytics"}));
  std::optional<providers::ApplyRequest> applied = w.provider->LastApply(env.name);
  ASSERT_TRUE(applied.has_value());
  const auto& secret = applied->secret_env;
  EXPECT_EQ(secret.at("MAIN_DATABASE_URL"),
            "postgres://" + env.name + "_main:pw@db:5432/" + env.name + "_main");
  EXPECT_EQ(secret.at("JOB_QUEUE_DATABASE_URL"),
            "postgres://" + env.name + "_job-queue:pw@db:5432/" + env.name + "_job-queue");
  EXPECT_TRUE(secret.count("ANALYTICS_DATABASE_URL"));
  EXPECT_EQ(secret.at("DATABASE_URL"), secret.at("MAIN_DATABASE_URL"));
  EXPECT_EQ(secret.at("PGDATABASE"), env.name + "_main");
  EXPECT_EQ(databases.last_server, "");  // analytics: the shared server

  // A failure names the instance.
  w.forge.Push(kRepo, 75, Sha(2));
  w.forge.SetFile(kRepo, Sha(2), "eph.yaml", config);
  databases.keys.clear();
  w.MustReconcile(75);  // main is ensured again, fine
  EXPECT_EQ(w.Live(75)->state, EnvState::kReady);
  w.forge.Push(kRepo, 75, Sha(3));
  w.forge.SetFile(kRepo, Sha(3), "eph.yaml", config);
  databases.fail_next = absl::FailedPreconditionError("seed script db/a.sql line 1: boom");
  w.MustReconcile(75);
  EXPECT_EQ(w.Live(75)->state, EnvState::kFailed);
  EXPECT_EQ(w.Live(75)->reason, "database `main`: seed script db/a.sql line 1: boom");
}

TEST(ReconcilerDatabaseTest, AProviderThatCannotRunAServerFailsTheEnvironmentSayingSo) {
  const std::string config = ConfigYaml() +
                             "database:\n"
                             "  instances:\n"
                             "    - {name: pg, version: \"15\", placement: environment}\n";
  World w(config);
  FakeDatabases databases;
  UseDatabases(w, databases);
  w.provider->FailNext(M::kEnsureDatabaseServer,
                       absl::FailedPreconditionError("image postgres:15 is not on the host"));
  w.OpenPr(74);
  w.MustReconcile(74);
  EXPECT_EQ(w.Live(74)->state, EnvState::kFailed);
  EXPECT_EQ(w.Live(74)->reason, "database: image postgres:15 is not on the host");
  EXPECT_EQ(w.provider->Calls(M::kApply), 0);
  EXPECT_EQ(databases.ensures, 0);
}

TEST(ReconcilerDatabaseTest, AFailingSeedFailsTheEnvironmentWithItsMessageAndAServerOutageRetries) {
  World w(DatabaseConfig());
  FakeDatabases databases;
  UseDatabases(w, databases);
  w.OpenPr(71);
  databases.fail_next = absl::UnavailableError("connection refused");
  EXPECT_FALSE(w.Reconcile(71).ok());
  EXPECT_EQ(w.provider->Calls(M::kApply), 0);
  w.MustReconcile(71);
  EXPECT_EQ(w.Live(71)->state, EnvState::kReady);

  w.forge.Push(kRepo, 71, Sha(2));
  w.forge.SetFile(kRepo, Sha(2), "eph.yaml", DatabaseConfig());
  databases.fail_next = absl::FailedPreconditionError(
      "seed script db/schema.sql line 3: ERROR: relation \"users\" does not exist");
  w.MustReconcile(71);
  EXPECT_EQ(w.Live(71)->state, EnvState::kFailed);
  EXPECT_THAT(w.Live(71)->reason, HasSubstr("db/schema.sql line 3"));
  EXPECT_THAT(CommentFor(w, 71, w.Live(71)->name), HasSubstr("relation \"users\" does not exist"));
}

TEST(ReconcilerDatabaseTest, WithoutADatabaseServerTheEnvironmentFailsSayingSo) {
  World w(DatabaseConfig());
  w.OpenPr(72);
  w.MustReconcile(72);
  EXPECT_EQ(w.Live(72)->state, EnvState::kFailed);
  EXPECT_THAT(w.Live(72)->reason, HasSubstr("EPH_DATABASE_ADMIN_URL"));
  EXPECT_EQ(w.provider->Calls(M::kApply), 0);
}

TEST(ResyncDatabaseTest, DatabasesOfEnvironmentsThatAreNotLiveAreDropped) {
  World w;
  w.OpenPr(73);
  w.MustReconcile(73);
  FakeDatabases databases;
  databases.existing = {w.Live(73)->name, "gone-env-1"};
  ControllerMetrics metrics;
  ResyncOptions options;
  options.databases = &databases;
  Resyncer resync(*w.store, w.registry, w.clock, metrics, options, [] {});
  absl::StatusOr<ResyncReport> report = resync.RunOnce();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(databases.existing, std::set<std::string>{w.Live(73)->name});
  EXPECT_EQ(databases.drops, 1);
}

TEST(ReconcilerTest, MalformedKeyIsATerminalError) {
  World w;
  absl::StatusOr<ReconcileResult> r = w.reconciler->Reconcile("not a key");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

// `eph up --repo R --pr N` on a pull request without the label: the environment is made and
// kept while the pull request is open; closing it still destroys the environment.
TEST(ReconcilerTest, AnEnvironmentForcedForAnUnlabelledPullRequestStaysUntilItCloses) {
  World w;
  w.OpenPr(80, /*labels=*/{});
  state::Environment env;
  env.name = "my-app-forced-80";
  env.project = kRepo;
  env.pr_number = 80;
  env.state = EnvState::kPending;
  env.namespace_name = "eph-my-app-forced-80";
  env.forced = true;
  env.created_at = w.clock.Now();
  ASSERT_TRUE(w.store->CreateEnvironment(env).ok());
  w.MustReconcile(80);
  ASSERT_TRUE(w.Live(80).has_value());
  EXPECT_EQ(w.Live(80)->state, EnvState::kReady);
  EXPECT_TRUE(w.Live(80)->forced);  // kept through Converge
  w.forge.Push(kRepo, 80, Sha(2));
  w.forge.SetFile(kRepo, Sha(2), "eph.yaml", ConfigYaml());
  w.MustReconcile(80);
  EXPECT_EQ(w.Live(80)->head_sha, Sha(2));
  EXPECT_EQ(w.Live(80)->state, EnvState::kReady);

  w.forge.SetState(kRepo, 80, forge::PullRequestState::kClosed);
  w.MustReconcile(80);
  w.MustReconcile(80);
  EXPECT_FALSE(w.Live(80).has_value());

  // Without the flag the same environment is destroyed at once: the label is missing.
  w.OpenPr(81, {});
  env.name = "my-app-plain-81";
  env.pr_number = 81;
  env.namespace_name = "eph-my-app-plain-81";
  env.forced = false;
  ASSERT_TRUE(w.store->CreateEnvironment(env).ok());
  w.MustReconcile(81);
  w.MustReconcile(81);
  EXPECT_FALSE(w.Live(81).has_value());
}

state::Environment ByHand(World& w, const std::string& name, const std::string& sha) {
  state::Environment env;
  env.name = name;
  env.project = kRepo;
  env.state = EnvState::kPending;
  env.head_sha = sha;
  env.created_at = w.clock.Now();
  absl::StatusOr<state::Environment> created = w.store->CreateEnvironment(env);
  EXPECT_TRUE(created.ok()) << created.status();
  return created.ok() ? *created : env;
}

state::Environment Get(World& w, const std::string& name) {
  absl::StatusOr<std::optional<state::Environment>> got = w.store->GetEnvironment(name);
  EXPECT_TRUE(got.ok() && got->has_value());
  return got.ok() && got->has_value() ? **got : state::Environment{};
}

TEST(ReconcilerTest, EnvironmentCreatedByHandIsAppliedAndDestroyed) {
  World w;
  std::string yaml = ConfigYaml();
  yaml.replace(yaml.find("pr-{pr_number}"), 14, "sha-{short_sha}");
  w.forge.SetFile(kRepo, Sha(5), "eph.yaml", yaml);
  ByHand(w, "my-app-by-hand", Sha(5));

  ASSERT_TRUE(w.reconciler->Reconcile(EnvironmentKey("my-app-by-hand")).ok());
  state::Environment env = Get(w, "my-app-by-hand");
  EXPECT_EQ(env.state, EnvState::kReady);
  EXPECT_EQ(env.url, "https://my-app-by-hand." + std::string(kBaseDomain));
  ASSERT_TRUE(w.provider->Exists(env.name));
  EXPECT_EQ(w.provider->LastApply(env.name)->images[0].tag, "sha-" + Sha(5).substr(0, 7));
  EXPECT_TRUE(w.forge.Comments(kRepo, 0).empty());  // no pull request to comment on

  env.state = EnvState::kDestroying;  // DELETE through the API
  env.reason = "destroyed on request through the API";
  ASSERT_TRUE(w.store->UpdateEnvironment(env).ok());
  ASSERT_TRUE(w.reconciler->Reconcile(EnvironmentKey(env.name)).ok());
  EXPECT_EQ(Get(w, env.name).state, EnvState::kDestroyed);
  EXPECT_FALSE(w.provider->Exists(env.name));
}

TEST(ReconcilerTest, TemplateThatNeedsAPullRequestFailsAnEnvironmentWithoutOne) {
  World w;
  w.forge.SetFile(kRepo, Sha(5), "eph.yaml", ConfigYaml());  // newTag: "pr-{pr_number}"
  ByHand(w, "my-app-no-pr", Sha(5));
  ASSERT_TRUE(w.reconciler->Reconcile(EnvironmentKey("my-app-no-pr")).ok());
  state::Environment env = Get(w, "my-app-no-pr");
  EXPECT_EQ(env.state, EnvState::kFailed);
  EXPECT_THAT(env.reason, AllOf(HasSubstr("images[api].newTag"), HasSubstr("pr_number")));
  EXPECT_EQ(w.provider->Calls(M::kApply), 0);
}

}  // namespace
}  // namespace eph::controller::testing
