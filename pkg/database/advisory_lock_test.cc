// Against the test bed's PostgreSQL (FIXTURES postgres). Keys are random per test, so tests run
// in parallel with each other and with anything else on the server.
#include "pkg/database/advisory_lock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <pqxx/pqxx>
#include <stdexcept>

#include "pkg/base/random.h"
#include "test/support/testbed.h"

namespace eph::database {
namespace {

using Mode = AdvisoryLock::Mode;
using std::chrono::steady_clock;

std::string AdminUrl() {
  return eph::testing::TestbedValue("postgres", "EPH_TEST_POSTGRES_ADMIN_URL");
}

int64_t FreshKey() { return AdvisoryLockKey(SecureRandom::Instance().Hex(16)); }

// Whether another session can take `key` exclusively right now.
bool Free(int64_t key) {
  pqxx::connection other(AdminUrl());
  return AdvisoryLock::TryAcquire(other, key).has_value();
}

TEST(AdvisoryLockTest, IsHeldWhileTheGuardLivesAndReleasedAfter) {
  pqxx::connection conn(AdminUrl());
  const int64_t key = FreshKey();
  {
    std::optional<AdvisoryLock> lock = AdvisoryLock::TryAcquire(conn, key);
    ASSERT_TRUE(lock);
    EXPECT_FALSE(Free(key));
  }
  EXPECT_TRUE(Free(key));
}

TEST(AdvisoryLockTest, AnExceptionThroughTheScopeReleasesIt) {
  pqxx::connection conn(AdminUrl());
  const int64_t key = FreshKey();
  try {
    absl::StatusOr<AdvisoryLock> lock =
        AdvisoryLock::Acquire(conn, key, Mode::kExclusive,
                              steady_clock::now() + std::chrono::seconds(10), "the test lock");
    ASSERT_TRUE(lock.ok()) << lock.status();
    ASSERT_FALSE(Free(key));
    pqxx::nontransaction tx(conn);
    tx.exec("SELECT * FROM no_such_table_here");  // throws, as a failing step would
    FAIL() << "the statement should have failed";
  } catch (const pqxx::sql_error&) {
  }
  EXPECT_TRUE(Free(key));
  // The connection is still usable and holds nothing.
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                    "pid = pg_backend_pid()")[0][0]
                .as<int>(),
            0);
}

TEST(AdvisoryLockTest, SharedHoldersExcludeOnlyAnExclusiveOne) {
  pqxx::connection a(AdminUrl()), b(AdminUrl());
  const int64_t key = FreshKey();
  std::optional<AdvisoryLock> shared_a = AdvisoryLock::TryAcquire(a, key, Mode::kShared);
  ASSERT_TRUE(shared_a);
  std::optional<AdvisoryLock> shared_b = AdvisoryLock::TryAcquire(b, key, Mode::kShared);
  EXPECT_TRUE(shared_b);
  EXPECT_FALSE(Free(key));
  shared_a.reset();
  shared_b.reset();
  EXPECT_TRUE(Free(key));
}

TEST(AdvisoryLockTest, WaitingPastTheDeadlineIsDeadlineExceeded) {
  pqxx::connection holder(AdminUrl()), waiter(AdminUrl());
  const int64_t key = FreshKey();
  std::optional<AdvisoryLock> held = AdvisoryLock::TryAcquire(holder, key);
  ASSERT_TRUE(held);
  const auto started = steady_clock::now();
  absl::StatusOr<AdvisoryLock> lock = AdvisoryLock::Acquire(
      waiter, key, Mode::kShared, started + std::chrono::milliseconds(300), "the test lock");
  EXPECT_EQ(lock.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(lock.status().message(), "timed out waiting for the test lock");
  EXPECT_LT(steady_clock::now() - started, std::chrono::seconds(5));
  absl::StatusOr<AdvisoryLock> past = AdvisoryLock::Acquire(
      waiter, key, Mode::kShared, steady_clock::now() - std::chrono::seconds(1), "it");
  EXPECT_EQ(past.status().code(), absl::StatusCode::kDeadlineExceeded);
}

std::string LockTimeout(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  return tx.exec("SHOW lock_timeout")[0][0].c_str();
}

// The wait sets lock_timeout for itself only: a caller that goes on using the connection after a
// timed-out wait (Ensure cleans up a failed environment on it) must not inherit the limit.
TEST(AdvisoryLockTest, TheWaitsTimeLimitDoesNotOutliveTheWait) {
  pqxx::connection holder(AdminUrl()), waiter(AdminUrl());
  const std::string before = LockTimeout(waiter);
  const int64_t key = FreshKey();
  {
    absl::StatusOr<AdvisoryLock> lock = AdvisoryLock::Acquire(
        waiter, key, Mode::kExclusive, steady_clock::now() + std::chrono::seconds(30), "it");
    ASSERT_TRUE(lock.ok()) << lock.status();
    EXPECT_EQ(LockTimeout(waiter), before);
  }
  std::optional<AdvisoryLock> held = AdvisoryLock::TryAcquire(holder, key);
  ASSERT_TRUE(held);
  absl::StatusOr<AdvisoryLock> timed_out = AdvisoryLock::Acquire(
      waiter, key, Mode::kExclusive, steady_clock::now() + std::chrono::seconds(1), "it");
  ASSERT_EQ(timed_out.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(LockTimeout(waiter), before);
}

TEST(AdvisoryLockTest, AMovedGuardReleasesOnce) {
  pqxx::connection conn(AdminUrl());
  const int64_t key = FreshKey();
  {
    std::optional<AdvisoryLock> lock = AdvisoryLock::TryAcquire(conn, key);
    ASSERT_TRUE(lock);
    AdvisoryLock moved(std::move(*lock));
    lock.reset();  // the moved-from guard releases nothing
    EXPECT_FALSE(Free(key));
  }
  EXPECT_TRUE(Free(key));
}

TEST(AdvisoryLockTest, KeysAreDistinctPerKindAndName) {
  EXPECT_NE(EnvironmentLockKey("a"), TemplateLockKey("a"));
  EXPECT_NE(TemplateLockKey("a"), TemplateOwnerLockKey("a"));
  EXPECT_NE(TemplateLockKey("a"), SpareRefillLockKey("a"));
  EXPECT_EQ(EnvironmentLockKey("a"), AdvisoryLockKey("eph.env:a"));  // stable across versions
}

}  // namespace
}  // namespace eph::database
