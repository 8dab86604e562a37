#include "pkg/kube/process_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "test/support/testbed.h"

namespace eph::kube {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// The tests use /bin/sh as the *program under test* (a stand-in for kustomize or a credential
// plugin); the runner itself never involves a shell. Exit codes and both streams:
// credentials_test.cc.
TEST(RunProcessTest, ArgumentsReachTheProgramVerbatim) {
  const std::string dir = eph::testing::MakeTempDir("process-argv");
  const std::string marker = dir + "/touched";
  absl::StatusOr<ProcessResult> r =
      RunProcess({.argv = {"/bin/echo", "$(touch " + marker + ")", "a;b", "*"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "$(touch " + marker + ") a;b *\n");
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(RunProcessTest, KillsAProgramThatWritesTooMuchWhenAsked) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<ProcessResult> r =
      RunProcess({.argv = {"/usr/bin/yes", "a line of manifest output"},
                  .timeout = 30s,
                  .max_output_bytes = 1 << 20,
                  .kill_on_output_limit = true});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->killed_for_output);
  EXPECT_EQ(r->out.size(), 1u << 20);
  EXPECT_FALSE(r->succeeded());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);  // killed, not run to the timeout
}

TEST(RunProcessTest, KillsAProgramThatTakesTooLongWithItsChildren) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<ProcessResult> r =
      RunProcess({.argv = {"/bin/sh", "-c", "sleep 30 & sleep 30"}, .timeout = 300ms});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(r->succeeded());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RunProcessTest, KeepsTheTailOfStderrWhenAsked) {
  absl::StatusOr<ProcessResult> r =
      RunProcess({.argv = {"/bin/sh", "-c",
                           "i=0; while [ $i -lt 2000 ]; do echo noise $i >&2; i=$((i+1)); "
                           "done; echo the real error >&2; exit 1"},
                  .stderr_tail_bytes = 256});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LE(r->err.size(), 256u);
  EXPECT_THAT(r->err, HasSubstr("the real error"));
}

TEST(RunProcessTest, RunsInTheWorkingDirectory) {
  const std::string dir = eph::testing::MakeTempDir("process-cwd");
  absl::StatusOr<ProcessResult> r = RunProcess({.argv = {"/bin/pwd"}, .working_dir = dir});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, std::filesystem::canonical(dir).string() + "\n");
}

TEST(RunProcessTest, AMissingProgramIsNotFound) {
  absl::StatusOr<ProcessResult> r = RunProcess({.argv = {"/nonexistent/kustomize"}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace eph::kube
