// eph.yaml's variables and secrets through the reconciler: what the provider is asked to give
// the app, in which order of precedence, and what happens when ephd lacks a secret.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "pkg/controller/reconciler.h"
#include "pkg/controller/render.h"
#include "pkg/controller/secret_source.h"
#include "pkg/controller/test_world.h"
#include "test/support/testbed.h"

namespace eph::controller {
namespace {

using providers::FakeProvider;
using state::EnvState;
using testing::ConfigYaml;
using ::testing::HasSubstr;
using testing::kRepo;
using ::testing::Not;
using testing::Sha;
using testing::World;
using M = FakeProvider::Method;

constexpr char kSecretValue[] = "sk_live_do-not-show-me";

// A world whose ephd has `secrets` in its secrets_dir.
struct SecretsWorld {
  explicit SecretsWorld(const std::string& environment_keys,
                        const std::map<std::string, std::string>& secrets)
      : w(ConfigYaml("", environment_keys)),
        dir(eph::testing::MakeTempDir("secrets")),
        source(dir) {
    for (const auto& [name, value] : secrets) std::ofstream(dir + "/" + name) << value << "\n";
    w.options.secrets = &source;
    w.reconciler = std::make_unique<EnvironmentReconciler>(*w.store, w.forge, w.registry, w.clock,
                                                           w.random, w.options);
  }
  World w;
  std::string dir;
  DirectorySecretSource source;
};

std::string CommentFor(World& w, int64_t pr, const std::string& env) {
  std::optional<forge::FakeForge::Comment> c =
      w.forge.CommentWithMarker(kRepo, pr, EnvironmentReconciler::CommentMarker(env));
  return c ? c->body : "";
}

TEST(AppSettingsReconcilerTest, VariablesAreExpandedAndSecretsReadFromEphd) {
  SecretsWorld s(
      "  variables:\n"
      "    API_URL: https://api.example.com/pr-{pr_number}\n"
      "    BUILD: \"{short_sha}\"\n"
      "  secrets: [STRIPE_KEY]\n",
      {{"STRIPE_KEY", kSecretValue}});
  s.w.OpenPr(21);
  s.w.MustReconcile(21);
  const state::Environment env = *s.w.Live(21);
  EXPECT_EQ(env.state, EnvState::kReady) << env.reason;
  std::optional<providers::ApplyRequest> applied = s.w.provider->LastApply(env.name);
  ASSERT_TRUE(applied.has_value());
  EXPECT_EQ(applied->secret_env,
            (std::map<std::string, std::string>{{"API_URL", "https://api.example.com/pr-21"},
                                                {"BUILD", Sha(1).substr(0, 7)},
                                                {"STRIPE_KEY", kSecretValue}}));
  // Nowhere people look: the row (API), its events, the comment.
  EXPECT_THAT(env.spec_json, Not(HasSubstr(kSecretValue)));
  EXPECT_THAT(env.reason, Not(HasSubstr(kSecretValue)));
  // Held here: a range-for over `*EventsFor(...)` would read a destroyed StatusOr.
  const std::vector<state::EnvEvent> events = s.w.store->EventsFor(env.name).value();
  for (const state::EnvEvent& e : events) {
    EXPECT_THAT(e.reason, Not(HasSubstr(kSecretValue)));
  }
  EXPECT_THAT(CommentFor(s.w, 21, env.name), Not(HasSubstr(kSecretValue)));
  EXPECT_THAT(applied->config_json, Not(HasSubstr(kSecretValue)));
}

TEST(AppSettingsReconcilerTest, AMissingSecretFailsTheEnvironmentBeforeTheProviderIsCalled) {
  SecretsWorld s("  variables: {A: b}\n  secrets: [STRIPE_KEY, SENTRY_DSN]\n",
                 {{"STRIPE_KEY", kSecretValue}});
  s.w.OpenPr(22);
  s.w.MustReconcile(22);
  const state::Environment env = *s.w.Live(22);
  EXPECT_EQ(env.state, EnvState::kFailed);
  EXPECT_EQ(env.reason, "secret SENTRY_DSN is not configured in ephd (secrets_dir " + s.dir + ")");
  EXPECT_EQ(s.w.provider->Calls(M::kApply), 0);
  EXPECT_THAT(CommentFor(s.w, 22, env.name), HasSubstr("secret SENTRY_DSN is not configured"));
  EXPECT_THAT(CommentFor(s.w, 22, env.name), Not(HasSubstr(kSecretValue)));
  // Terminal: the same commit is not tried again in a loop.
  s.w.MustReconcile(22);
  EXPECT_EQ(s.w.provider->Calls(M::kApply), 0);
  EXPECT_EQ(s.w.Live(22)->state, EnvState::kFailed);
}

TEST(AppSettingsReconcilerTest, WithoutSecretsDirANamedSecretFailsSayingSo) {
  World w(ConfigYaml("", "  secrets: [STRIPE_KEY]\n"));
  w.OpenPr(23);
  w.MustReconcile(23);
  EXPECT_EQ(w.Live(23)->reason,
            "secret STRIPE_KEY is not configured in ephd (no secrets_dir is set)");
  EXPECT_EQ(w.provider->Calls(M::kApply), 0);
}

TEST(AppSettingsReconcilerTest, ASecretTheAppEchoesIntoAFailureIsRedactedFromTheReason) {
  SecretsWorld s("  secrets: [STRIPE_KEY]\n", {{"STRIPE_KEY", kSecretValue}});
  const std::string echoed = std::string("crashed; env: STRIPE_KEY=") + kSecretValue;
  s.w.OpenPr(25);
  s.w.MustReconcile(25);
  const std::string name = s.w.Live(25)->name;
  ASSERT_EQ(s.w.Live(25)->state, EnvState::kReady);
  // The app crashes printing its environment: the provider's message carries the value.
  s.w.provider->SetPhase(name, providers::Phase::kFailed, echoed);
  s.w.MustReconcile(25);
  EXPECT_EQ(s.w.Live(25)->state, EnvState::kFailed);
  EXPECT_EQ(s.w.Live(25)->reason, "crashed; env: STRIPE_KEY=[secret STRIPE_KEY]");
  // An Apply refused with it.
  s.w.provider->FailNext(M::kApply, absl::FailedPreconditionError(echoed));
  s.w.forge.Push(kRepo, 25, Sha(2));
  s.w.MustReconcile(25);
  EXPECT_EQ(s.w.Live(25)->reason, "apply failed: crashed; env: STRIPE_KEY=[secret STRIPE_KEY]");
  EXPECT_THAT(CommentFor(s.w, 25, name), Not(HasSubstr(kSecretValue)));
  const std::vector<state::EnvEvent> events = s.w.store->EventsFor(name).value();
  for (const state::EnvEvent& e : events) {
    EXPECT_THAT(e.reason, Not(HasSubstr(kSecretValue)));
  }
}

TEST(AppSettingsRedactTest, LongestValueFirstAndShortValuesLeft) {
  EXPECT_EQ(
      RedactSecretValues("a=abcdef b=abcd c=ab", {{"A", "abcdef"}, {"B", "abcd"}, {"C", "ab"}}),
      "a=[secret A] b=[secret B] c=ab");
  EXPECT_EQ(RedactSecretValues("xxxxxxxx", {{"X", "xxxx"}}), "[secret X][secret X]");
  EXPECT_EQ(RedactSecretValues("nothing", {}), "nothing");
}

TEST(AppSettingsRenderTest, VariablesAreExpandedForTheirCommit) {
  absl::StatusOr<config::ProjectConfig> config = config::LoadConfig(
      ConfigYaml("", "  variables: {REF: \"{branch}@{sha}\", PLAIN: x}\n  secrets: [S]\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<RenderedSpec> spec = RenderSpec(*config, {kRepo, 5, "abcdef0123", "feature/x"});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->variables,
            (std::map<std::string, std::string>{{"PLAIN", "x"}, {"REF", "feature/x@abcdef0123"}}));
  // Names only go to the provider through the request's environment, not its config.
  EXPECT_THAT(spec->config_json, Not(HasSubstr("variables")));
}

TEST(AppSettingsRenderTest, AVariableWithoutAValueHereFailsNamingIt) {
  absl::StatusOr<config::ProjectConfig> config = config::LoadConfig(
      "version: '1.0'\nname: app\ndocker: {}\nenvironment:\n"
      "  variables: {PR: \"pr-{pr_number}\"}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  // An environment made by hand has no pull request.
  absl::StatusOr<RenderedSpec> spec = RenderSpec(*config, {kRepo, 0, "abcdef0123", ""});
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("environment.variables.PR"));
}

}  // namespace
}  // namespace eph::controller
