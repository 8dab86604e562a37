// PostgreSQL session-level advisory locks as an RAII guard: the lock is released when the guard
// goes, also when an exception passes through. Advisory locks are what serialises Eph's
// processes sharing one server (per environment, per template, per template's refill); the keys
// of all of them are made here so they cannot collide by accident.
//
// A lock belongs to the connection that took it: the guard must not outlive the connection, and
// closing the connection releases every lock it holds (what happens if the release fails because
// the connection broke).
//
// Thread-safety: a guard is used by the thread that uses its connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <pqxx/types>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace eph::database {

// The lock key of `what` ("eph.env:<environment>", ...): the first 64 bits of its SHA-256.
int64_t AdvisoryLockKey(std::string_view what);

// Operations on one environment (Ensure, Drop).
int64_t EnvironmentLockKey(std::string_view environment);
// A template: shared while it is cloned or copied to a spare, exclusive while built or dropped.
int64_t TemplateLockKey(std::string_view tpl);
// Handing a clone's objects over from the template's role, one clone of a template at a time.
int64_t TemplateOwnerLockKey(std::string_view tpl);
// The refill of a template's spares: one maker at a time.
int64_t SpareRefillLockKey(std::string_view tpl);

class AdvisoryLock {
 public:
  enum class Mode { kExclusive, kShared };

  // Waits for the lock until `deadline` (the server's lock_timeout, restored afterwards).
  // DeadlineExceeded "timed out waiting for <what>" when it passes. Other errors throw, as
  // libpqxx does.
  [[nodiscard]] static absl::StatusOr<AdvisoryLock> Acquire(
      pqxx::connection_base& conn, int64_t key, Mode mode,
      std::chrono::steady_clock::time_point deadline, std::string_view what);
  // Waits as long as it takes.
  static AdvisoryLock AcquireUnbounded(pqxx::connection_base& conn, int64_t key, Mode mode);
  // Does not wait: nullopt when another session holds it (in a conflicting mode).
  static std::optional<AdvisoryLock> TryAcquire(pqxx::connection_base& conn, int64_t key,
                                                Mode mode = Mode::kExclusive);

  AdvisoryLock(AdvisoryLock&& other) noexcept;
  AdvisoryLock& operator=(AdvisoryLock&& other) = delete;
  AdvisoryLock(const AdvisoryLock&) = delete;
  AdvisoryLock& operator=(const AdvisoryLock&) = delete;
  // Releases the lock; a failure is logged (the connection is broken, and its end releases it).
  ~AdvisoryLock();

  int64_t key() const { return key_; }

 private:
  AdvisoryLock(pqxx::connection_base& conn, int64_t key, Mode mode)
      : conn_(&conn), key_(key), mode_(mode) {}

  pqxx::connection_base* conn_;  // null once moved from
  int64_t key_;
  Mode mode_;
};

}  // namespace eph::database
