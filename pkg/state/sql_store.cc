#include "pkg/state/sql_store.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string_view>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "pkg/state/delivery_commit_queue.h"

namespace eph::state {

// --- SqlRow ---

const SqlValue& SqlRow::At(size_t i) const {
  if (i >= cells_.size()) {
    throw SqlError(absl::InternalError(
        absl::StrCat("store: column ", i, " out of range (row has ", cells_.size(), ")")));
  }
  return cells_[i];
}

bool SqlRow::IsNull(size_t i) const { return std::holds_alternative<std::monostate>(At(i)); }

int64_t SqlRow::Int(size_t i) const {
  const SqlValue& v = At(i);
  if (const auto* n = std::get_if<int64_t>(&v)) return *n;
  if (const auto* b = std::get_if<bool>(&v)) return *b ? 1 : 0;
  if (const auto* s = std::get_if<std::string>(&v)) {
    int64_t out = 0;
    if (absl::SimpleAtoi(*s, &out)) return out;
    throw SqlError(absl::InternalError(
        absl::StrCat("store: column ", i, " holds '", *s, "', expected an integer")));
  }
  throw SqlError(absl::InternalError(absl::StrCat("store: column ", i, " is NULL")));
}

std::optional<int64_t> SqlRow::OptInt(size_t i) const {
  if (IsNull(i)) return std::nullopt;
  return Int(i);
}

std::string SqlRow::Str(size_t i) const {
  const SqlValue& v = At(i);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* n = std::get_if<int64_t>(&v)) return absl::StrCat(*n);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  return "";
}

bool SqlRow::Bool(size_t i) const {
  const SqlValue& v = At(i);
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  if (const auto* n = std::get_if<int64_t>(&v)) return *n != 0;
  if (const auto* s = std::get_if<std::string>(&v)) {
    if (*s == "t" || *s == "true" || *s == "1") return true;
    if (*s == "f" || *s == "false" || *s == "0") return false;
  }
  throw SqlError(absl::InternalError(absl::StrCat("store: column ", i, " is not a boolean")));
}

TimePoint SqlRow::Time(size_t i) const { return FromUnixMillis(Int(i)); }

std::optional<TimePoint> SqlRow::OptTime(size_t i) const {
  if (IsNull(i)) return std::nullopt;
  return Time(i);
}

namespace {

// PostgreSQL assigns identity values at insert time, not at commit, so two concurrent
// transactions could commit event 7 after event 8, and an SSE reader that has already passed 8
// would never see 7. Every transaction that appends an event first takes this lock (released at
// commit), which makes event ids increase in commit order. SQLite has one writer at a time, so
// it needs nothing.
constexpr int64_t kEventIdLockKey = 0x6570682E65767473;  // "eph.evts"

// The most deliveries one RecordDelivery transaction commits together. ephd's 8 API handler
// threads seldom queue more; the bound keeps one transaction (and a failed group's one-by-one
// retry) short whatever calls the store.
constexpr size_t kMaxDeliveryGroup = 32;
// How many such transactions run at once. PostgreSQL: two, so that one group is sent and
// inserted while the other waits for its commit to be flushed; with one the server sat idle
// between groups and bench/intake.sh measured it slower than two (four: no better than two,
// within that machine's noise). SQLite: one, as its writes take turns on one connection
// anyway: a second group would only wait there, when it could be growing.
int DeliveryGroupsInFlight(SqlDialect dialect) { return dialect == SqlDialect::kSqlite ? 1 : 2; }

constexpr absl::string_view kEnvColumns =
    "name, project, pr_number, state, reason, url, provider, head_sha, spec_json, created_at, "
    "updated_at, expires_at, last_activity_at, version, namespace_name, forced, backend_url";
constexpr absl::string_view kEventColumns = "id, environment, from_state, to_state, reason, at";
constexpr absl::string_view kProjectColumns =
    "repo, forge, installation_id, enabled, created_at, updated_at, trigger_labels";
constexpr absl::string_view kTokenColumns = "id, name, scope, hash, created_at, revoked_at";
constexpr absl::string_view kDeliveryColumns =
    "id, forge, event, action, repo, pr_number, body, received_at, kind, comment_id, author, text";

// Enqueue's merging rules (store.h), as the ON CONFLICT clause of an insert into work_queue.
constexpr absl::string_view kEnqueueMerge =
    "ON CONFLICT (key) DO UPDATE SET "
    "not_before = CASE "
    "WHEN work_queue.lease_owner IS NOT NULL AND NOT work_queue.dirty "
    "THEN excluded.not_before "
    "WHEN excluded.not_before < work_queue.not_before THEN excluded.not_before "
    "ELSE work_queue.not_before END, "
    "dirty = (work_queue.lease_owner IS NOT NULL)";

SqlValue Ms(TimePoint t) { return ToUnixMillis(t); }
SqlValue OptMs(const std::optional<TimePoint>& t) {
  return t.has_value() ? SqlValue(ToUnixMillis(*t)) : SqlValue();
}

Environment EnvironmentFromRow(const SqlRow& r) {
  Environment e;
  e.name = r.Str(0);
  e.project = r.Str(1);
  e.pr_number = r.Int(2);
  const std::string state = r.Str(3);
  const auto parsed = ParseEnvState(state);
  if (!parsed.has_value()) {
    throw SqlError(absl::InternalError(
        absl::StrCat("store: environment '", e.name, "' has an unknown state '", state, "'")));
  }
  e.state = *parsed;
  e.reason = r.Str(4);
  e.url = r.Str(5);
  e.provider = r.Str(6);
  e.head_sha = r.Str(7);
  e.spec_json = r.Str(8);
  e.created_at = r.Time(9);
  e.updated_at = r.Time(10);
  e.expires_at = r.OptTime(11);
  e.last_activity_at = r.OptTime(12);
  e.version = r.Int(13);
  e.namespace_name = r.Str(14);
  e.forced = r.Bool(15);
  e.backend_url = r.Str(16);
  return e;
}

EnvEvent EventFromRow(const SqlRow& r) {
  EnvEvent ev;
  ev.id = r.Int(0);
  ev.environment = r.Str(1);
  ev.from_state = r.Str(2);
  ev.to_state = r.Str(3);
  ev.reason = r.Str(4);
  ev.at = r.Time(5);
  return ev;
}

Delivery DeliveryFromRow(const SqlRow& r) {
  Delivery d;
  d.id = r.Str(0);
  d.forge = r.Str(1);
  d.event = r.Str(2);
  d.action = r.Str(3);
  d.repo = r.Str(4);
  d.pr_number = r.Int(5);
  d.body = r.Str(6);
  d.received_at = r.Time(7);
  d.kind = r.Str(8);
  d.comment_id = r.Int(9);
  d.author = r.Str(10);
  d.text = r.Str(11);
  return d;
}

Project ProjectFromRow(const SqlRow& r) {
  Project p;
  p.repo = r.Str(0);
  p.forge = r.Str(1);
  p.installation_id = r.Int(2);
  p.enabled = r.Bool(3);
  p.created_at = r.Time(4);
  p.updated_at = r.Time(5);
  p.trigger_labels = absl::StrSplit(r.Str(6), '\n', absl::SkipEmpty());
  return p;
}

std::string_view TokenScopeName(TokenScope s) { return s == TokenScope::kWrite ? "write" : "read"; }

ApiToken TokenFromRow(const SqlRow& r) {
  ApiToken t;
  t.id = r.Int(0);
  t.name = r.Str(1);
  const std::string scope = r.Str(2);
  if (scope == "write") {
    t.scope = TokenScope::kWrite;
  } else if (scope == "read") {
    t.scope = TokenScope::kRead;
  } else {
    throw SqlError(absl::InternalError(
        absl::StrCat("store: token '", t.name, "' has an unknown scope '", scope, "'")));
  }
  t.hash = r.Str(3);
  t.created_at = r.Time(4);
  t.revoked_at = r.OptTime(5);
  return t;
}

bool IsAlreadyExists(const SqlError& e) {
  return e.status().code() == absl::StatusCode::kAlreadyExists;
}

absl::Status LeaseLost(const Lease& lease) {
  return absl::AbortedError(
      absl::StrCat("work key '", lease.key, "' is no longer leased to '", lease.owner,
                   "' (the lease expired and another worker claimed it, or the attempt was already "
                   "finished); this attempt's outcome is discarded"));
}

class SqlStore final : public Store {
 public:
  explicit SqlStore(std::unique_ptr<SqlBackend> backend)
      : backend_(std::move(backend)),
        dialect_(backend_->dialect()),
        delivery_commits_(
            [this](std::span<DeliveryCommitQueue::Entry* const> group) {
              return CommitDeliveries(group);
            },
            kMaxDeliveryGroup, DeliveryGroupsInFlight(dialect_)) {}

  absl::Status Ping() override { return backend_->Ping(); }

  absl::StatusOr<int> SchemaVersion() override {
    int version = 0;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      const SqlResult r = tx.Exec("SELECT MAX(version) FROM schema_migrations", {});
      version = static_cast<int>(r.rows.empty() ? 0 : r.rows[0].OptInt(0).value_or(0));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return version;
  }

  uint64_t LocalChangeCount() override {
    std::lock_guard<std::mutex> lock(changes_mu_);
    return changes_;
  }

  uint64_t WaitForLocalChange(uint64_t seen, std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(changes_mu_);
    changes_cv_.wait_for(lock, timeout, [&] { return changes_ != seen; });
    return changes_;
  }

  absl::StatusOr<std::string> InstallationId() override {
    std::string id;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      const SqlResult r = tx.Exec("SELECT id FROM installation", {});
      if (r.rows.size() != 1) {
        return absl::DataLossError(absl::StrCat("the installation table holds ", r.rows.size(),
                                                " rows instead of one"));
      }
      id = r.rows[0].Str(0);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return id;
  }

  // --- deliveries and the work queue ---

  absl::StatusOr<bool> RecordDelivery(const Delivery& d,
                                      const std::optional<std::string>& work_key) override {
    if (d.id.empty()) return absl::InvalidArgumentError("delivery id is empty");
    if (work_key.has_value() && work_key->empty()) {
      return absl::InvalidArgumentError("work key is empty");
    }
    return delivery_commits_.Record(d, work_key);
  }

  DeliveryCommitStats DeliveryCommits() override { return delivery_commits_.Stats(); }

  absl::StatusOr<std::optional<Delivery>> GetDelivery(const std::string& id) override {
    std::optional<Delivery> out;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      const SqlResult r = tx.Exec(
          absl::StrCat("SELECT ", kDeliveryColumns, " FROM deliveries WHERE id = $1"), {id});
      if (!r.rows.empty()) out = DeliveryFromRow(r.rows[0]);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::vector<Delivery>> ListPullRequestDeliveries(const std::string& repo,
                                                                  int64_t pr_number,
                                                                  const std::string& kind,
                                                                  TimePoint since,
                                                                  int limit) override {
    std::vector<Delivery> out;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      const SqlResult r = tx.Exec(
          absl::StrCat("SELECT ", kDeliveryColumns,
                       " FROM deliveries WHERE repo = $1 AND pr_number = $2 AND kind = $3 "
                       "AND received_at >= $4 ORDER BY received_at, id LIMIT $5"),
          {repo, pr_number, kind, Ms(since), static_cast<int64_t>(limit)});
      out.clear();  // a retried transaction starts again
      for (const SqlRow& row : r.rows) out.push_back(DeliveryFromRow(row));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<int64_t> CountDeliveries() override {
    return CountRows("SELECT COUNT(*) FROM deliveries");
  }

  absl::Status Enqueue(const std::string& key, TimePoint not_before) override {
    if (key.empty()) return absl::InvalidArgumentError("work key is empty");
    return backend_->Run(TxMode::kWrite, [&](SqlTx& tx) {
      EnqueueIn(tx, key, not_before);
      return absl::OkStatus();
    });
  }

  absl::Status EnqueueMany(const std::vector<std::string>& keys, TimePoint not_before) override {
    for (const auto& key : keys) {
      if (key.empty()) return absl::InvalidArgumentError("work key is empty");
    }
    if (keys.empty()) return absl::OkStatus();
    return backend_->Run(TxMode::kWrite, [&](SqlTx& tx) {
      for (const auto& key : keys) EnqueueIn(tx, key, not_before);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<Lease> RenewLease(const Lease& lease, TimePoint now,
                                   Duration lease_for) override {
    if (lease_for <= Duration::zero()) {
      return absl::InvalidArgumentError("lease duration must be positive");
    }
    Lease renewed = lease;
    renewed.expires_at = now + lease_for;
    absl::Status s = backend_->Run(TxMode::kWrite, [&](SqlTx& tx) {
      // Only while still held: an expired lease that nobody else claimed is still ours.
      const SqlResult r = tx.Exec(
          "UPDATE work_queue SET lease_expires_at = $4 "
          "WHERE key = $1 AND lease_owner = $2 AND lease_expires_at = $3",
          {lease.key, lease.owner, Ms(lease.expires_at), Ms(renewed.expires_at)});
      if (r.affected == 0) return LeaseLost(lease);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return renewed;
  }

  absl::StatusOr<std::optional<Lease>> ClaimWork(const std::string& owner, TimePoint now,
                                                 Duration lease_for) override {
    if (owner.empty()) return absl::InvalidArgumentError("lease owner is empty");
    if (lease_for <= Duration::zero()) {
      return absl::InvalidArgumentError("lease duration must be positive");
    }
    // A key is claimable when it is due and unleased, or when its lease has expired (its
    // holder died or stalled: the work is still owed, whatever not_before says). A claim
    // satisfies a pending re-run request (dirty) that was due by now; a later one stays.
    // PostgreSQL: SKIP LOCKED lets concurrent claimers in any process pass over a row another
    // claimer is taking instead of queueing behind it, and the row lock makes the claim
    // exclusive. SQLite: the write transaction already excludes every other writer.
    const std::string sql = absl::StrCat(
        "UPDATE work_queue SET lease_owner = $1, lease_expires_at = $3, "
        "dirty = (dirty AND not_before > $2) "
        "WHERE key = (SELECT q.key FROM work_queue q "
        "WHERE (q.lease_owner IS NULL AND q.not_before <= $2) "
        "OR (q.lease_owner IS NOT NULL AND q.lease_expires_at <= $2) "
        "ORDER BY q.not_before, q.enqueued_at, q.key LIMIT 1",
        dialect_ == SqlDialect::kPostgres ? " FOR UPDATE SKIP LOCKED" : "",
        ") RETURNING key, attempts, lease_expires_at");
    std::optional<Lease> out;
    if (dialect_ == SqlDialect::kSqlite) {
      // Idle workers poll: answer "nothing due" from a read transaction, which in WAL mode
      // never waits for, nor holds up, the single writer (another ephd on the same file).
      bool any = false;
      absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
        any = !tx.Exec(
                     "SELECT 1 FROM work_queue "
                     "WHERE (lease_owner IS NULL AND not_before <= $1) "
                     "OR (lease_owner IS NOT NULL AND lease_expires_at <= $1) LIMIT 1",
                     {Ms(now)})
                   .rows.empty();
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
      if (!any) return out;
    }
    absl::Status s = backend_->Run(TxMode::kWrite, [&](SqlTx& tx) {
      const SqlResult r = tx.Exec(sql, {owner, Ms(now), Ms(now + lease_for)});
      if (r.rows.empty()) return absl::OkStatus();
      Lease lease;
      lease.key = r.rows[0].Str(0);
      lease.owner = owner;
      lease.attempts = r.rows[0].Int(1);
      lease.expires_at = r.rows[0].Time(2);
      out = std::move(lease);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::Status CompleteWork(const Lease& lease, TimePoint now) override {
    return backend_->Run(TxMode::kWrite, [&](SqlTx& tx) {
      // Not enqueued again while leased: the key is done. Both statements re-check the lease,
      // so a concurrent Enqueue either lands before (dirty: second statement) or after (a new
      // row) the delete, never in between.
      SqlResult r = tx.Exec(
          "DELETE FROM work_queue WHERE key = $1 AND lease_owner = $2 AND lease_expires_at = $3 "
          "AND NOT dirty",
          {lease.key, lease.owner, Ms(lease.expires_at)});
      if (r.affected > 0) return absl::OkStatus();
      // Enqueued again meanwhile: release it, due at the earliest time asked for meanwhile
      // (at once if that has passed), as a fresh item.
      r = tx.Exec(
          "UPDATE work_queue SET lease_owner = NULL, lease_expires_at = NULL, dirty = FALSE, "
          "attempts = 0, last_error = '', enqueued_at = $4 "
          "WHERE key = $1 AND lease_owner = $2 AND lease_expires_at = $3 AND dirty",
          {lease.key, lease.owner, Ms(lease.expires_at), Ms(now)});
      if (r.affected > 0) return absl::OkStatus();
      return LeaseLost(lease);
    });
  }

  absl::Status RetryWork(const Lease& lease, TimePoint retry_at,
                         const std::string& error) override {
    return backend_->Run(TxMode::kWrite, [&](SqlTx& tx) {
      // Backoff wins over a re-run requested meanwhile: the retry reads the latest state
      // anyway (reconciles are level-triggered), so nothing is lost by waiting.
      const SqlResult r = tx.Exec(
          "UPDATE work_queue SET lease_owner = NULL, lease_expires_at = NULL, dirty = FALSE, "
          "attempts = attempts + 1, not_before = $4, last_error = $5 "
          "WHERE key = $1 AND lease_owner = $2 AND lease_expires_at = $3",
          {lease.key, lease.owner, Ms(lease.expires_at), Ms(retry_at), error});
      if (r.affected == 0) return LeaseLost(lease);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<int64_t> QueueDepth() override {
    return CountRows("SELECT COUNT(*) FROM work_queue");
  }

  absl::StatusOr<std::optional<TimePoint>> NextDue() override {
    std::optional<TimePoint> out;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      const SqlResult r =
          tx.Exec("SELECT MIN(not_before) FROM work_queue WHERE lease_owner IS NULL", {});
      if (!r.rows.empty()) out = r.rows[0].OptTime(0);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  // --- environments ---

  absl::StatusOr<Environment> CreateEnvironment(const Environment& env) override {
    if (env.name.empty()) return absl::InvalidArgumentError("environment name is empty");
    if (env.pr_number < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment '", env.name, "': pr_number must not be negative"));
    }
    Environment stored = env;
    stored.version = 1;
    if (stored.updated_at == TimePoint{}) stored.updated_at = stored.created_at;
    absl::Status s = backend_->Run(TxMode::kWrite, [&](SqlTx& tx) -> absl::Status {
      if (!tx.Exec("SELECT 1 FROM environments WHERE name = $1", {env.name}).rows.empty()) {
        return NameTakenError(env.name);
      }
      if (env.pr_number > 0 && IsLive(env.state)) {
        const SqlResult live = tx.Exec(
            "SELECT name FROM environments WHERE project = $1 AND pr_number = $2 "
            "AND state <> 'destroyed'",
            {env.project, env.pr_number});
        if (!live.rows.empty()) {
          return LivePrError(env.project, env.pr_number, live.rows[0].Str(0));
        }
      }
      try {
        tx.Exec(absl::StrCat("INSERT INTO environments (", kEnvColumns,
                             ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                             "$13, 1, $14, $15, $16)"),
                {stored.name, stored.project, stored.pr_number,
                 std::string(EnvStateName(stored.state)), stored.reason, stored.url,
                 stored.provider, stored.head_sha, stored.spec_json, Ms(stored.created_at),
                 Ms(stored.updated_at), OptMs(stored.expires_at), OptMs(stored.last_activity_at),
                 stored.namespace_name, stored.forced, stored.backend_url});
      } catch (const SqlError& e) {
        // A concurrent create won the race past the checks above.
        if (IsAlreadyExists(e)) {
          return absl::AlreadyExistsError(
              absl::StrCat("environment '", env.name, "' or a live environment for ", env.project,
                           " PR #", env.pr_number, " was created concurrently"));
        }
        throw;
      }
      AppendEvent(tx, stored.name, "", EnvStateName(stored.state), stored.reason,
                  stored.created_at);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    SignalChange();
    return stored;
  }

  absl::StatusOr<std::optional<Environment>> GetEnvironment(const std::string& name) override {
    return FindOneEnvironment(
        absl::StrCat("SELECT ", kEnvColumns, " FROM environments WHERE name = $1"), {name});
  }

  absl::StatusOr<std::optional<Environment>> FindLiveEnvironment(const std::string& project,
                                                                 int64_t pr_number) override {
    return FindOneEnvironment(
        absl::StrCat("SELECT ", kEnvColumns,
                     " FROM environments WHERE project = $1 AND pr_number = $2 "
                     "AND state <> 'destroyed' ORDER BY created_at, name"),
        {project, pr_number});
  }

  absl::StatusOr<std::vector<Environment>> ListEnvironments(
      const EnvironmentFilter& filter) override {
    std::string sql = absl::StrCat("SELECT ", kEnvColumns, " FROM environments WHERE 1 = 1");
    std::vector<SqlValue> params;
    if (!filter.include_destroyed) absl::StrAppend(&sql, " AND state <> 'destroyed'");
    if (filter.project.has_value()) {
      params.push_back(*filter.project);
      absl::StrAppend(&sql, " AND project = $", params.size());
    }
    absl::StrAppend(&sql, " ORDER BY created_at, name");
    std::vector<Environment> out;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      for (const SqlRow& row : tx.Exec(sql, params).rows) {
        out.push_back(EnvironmentFromRow(row));
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<Environment> UpdateEnvironment(const Environment& env) override {
    std::optional<Environment> stored;
    absl::Status s = backend_->Run(TxMode::kWrite, [&](SqlTx& tx) -> absl::Status {
      const SqlResult cur =
          tx.Exec("SELECT state, version, expires_at FROM environments WHERE name = $1",
                  {env.name});
      if (cur.rows.empty()) {
        return absl::NotFoundError(absl::StrCat("environment '", env.name, "' does not exist"));
      }
      const std::string old_state = cur.rows[0].Str(0);
      const int64_t version = cur.rows[0].Int(1);
      const std::optional<TimePoint> old_expires_at = cur.rows[0].OptTime(2);
      if (version != env.version) return StaleVersionError(env.name, env.version);
      // project, pr_number and created_at are fixed at creation; last_activity_at only moves
      // forward (see TouchEnvironment).
      SqlResult r;
      try {
        r = tx.Exec(absl::StrCat(
                        "UPDATE environments SET state = $3, reason = $4, url = $5, provider = $6, "
                        "head_sha = $7, spec_json = $8, updated_at = $9, expires_at = $10, "
                        "last_activity_at = CASE WHEN last_activity_at IS NULL "
                        "OR CAST($11 AS BIGINT) > last_activity_at THEN CAST($11 AS BIGINT) "
                        "ELSE last_activity_at END, namespace_name = $12, forced = $13, backend_url = $14, "
                        "version = version + 1 WHERE name = $1 AND version = $2 RETURNING ",
                        kEnvColumns),
                    {env.name, env.version, std::string(EnvStateName(env.state)), env.reason,
                     env.url, env.provider, env.head_sha, env.spec_json, Ms(env.updated_at),
                     OptMs(env.expires_at), OptMs(env.last_activity_at), env.namespace_name,
                     env.forced, env.backend_url});
      } catch (const SqlError& e) {
        if (IsAlreadyExists(e)) {
          return absl::AlreadyExistsError(absl::StrCat(
              "environment '", env.name, "' cannot become ", std::string(EnvStateName(env.state)),
              ": its pull request already has another "
              "live environment"));
        }
        throw;
      }
      // PostgreSQL: a writer that committed between the SELECT and the UPDATE.
      if (r.rows.empty()) return StaleVersionError(env.name, env.version);
      stored = EnvironmentFromRow(r.rows[0]);
      if (old_state != EnvStateName(env.state)) {
        AppendEvent(tx, env.name, old_state, EnvStateName(env.state), env.reason, env.updated_at);
      } else if (stored->expires_at != old_expires_at) {
        // An extension (or `keep`) is news for the dashboard's countdown: an event in the same
        // state whose reason says what changed.
        AppendEvent(tx, env.name, old_state, old_state,
                    stored->expires_at ? "expires " + FormatRfc3339(*stored->expires_at)
                                       : "kept: no TTL",
                    env.updated_at);
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    SignalChange();
    return *std::move(stored);
  }

  absl::Status TouchEnvironment(const std::string& name, TimePoint at) override {
    return backend_->Run(TxMode::kWrite, [&](SqlTx& tx) -> absl::Status {
      const SqlResult r = tx.Exec(
          "UPDATE environments SET last_activity_at = $2 WHERE name = $1 "
          "AND (last_activity_at IS NULL OR last_activity_at < $2)",
          {name, Ms(at)});
      if (r.affected > 0) return absl::OkStatus();
      if (tx.Exec("SELECT 1 FROM environments WHERE name = $1", {name}).rows.empty()) {
        return absl::NotFoundError(absl::StrCat("environment '", name, "' does not exist"));
      }
      return absl::OkStatus();  // already as recent or more
    });
  }

  absl::StatusOr<bool> NameTaken(const std::string& name) override {
    bool taken = false;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      taken = !tx.Exec("SELECT 1 FROM environments WHERE name = $1", {name}).rows.empty();
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return taken;
  }

  absl::StatusOr<std::vector<EnvEvent>> ListEvents(int64_t after_id, int limit) override {
    if (limit < 0) return absl::InvalidArgumentError("event limit must not be negative");
    return QueryEvents(absl::StrCat("SELECT ", kEventColumns,
                                    " FROM env_events WHERE id > $1 ORDER BY id LIMIT $2"),
                       {after_id, int64_t{limit}});
  }

  absl::StatusOr<std::vector<EnvEvent>> EventsFor(const std::string& environment) override {
    return QueryEvents(absl::StrCat("SELECT ", kEventColumns,
                                    " FROM env_events WHERE environment = $1 ORDER BY id"),
                       {environment});
  }

  // --- projects ---

  absl::Status UpsertProject(const Project& p) override {
    if (p.repo.empty()) return absl::InvalidArgumentError("project repo is empty");
    const TimePoint updated_at = p.updated_at == TimePoint{} ? p.created_at : p.updated_at;
    return backend_->Run(TxMode::kWrite, [&](SqlTx& tx) {
      tx.Exec(absl::StrCat("INSERT INTO projects (", kProjectColumns,
                           ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (repo) DO UPDATE SET "
                           "forge = excluded.forge, installation_id = excluded.installation_id, "
                           "enabled = excluded.enabled, updated_at = excluded.updated_at, "
                           "trigger_labels = excluded.trigger_labels"),
              {p.repo, p.forge, p.installation_id, p.enabled, Ms(p.created_at), Ms(updated_at),
               absl::StrJoin(p.trigger_labels, "\n")});
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::optional<Project>> GetProject(const std::string& repo) override {
    std::optional<Project> out;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      const SqlResult r = tx.Exec(
          absl::StrCat("SELECT ", kProjectColumns, " FROM projects WHERE repo = $1"), {repo});
      if (!r.rows.empty()) out = ProjectFromRow(r.rows[0]);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::vector<Project>> ListProjects() override {
    std::vector<Project> out;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      for (const SqlRow& row :
           tx.Exec(absl::StrCat("SELECT ", kProjectColumns, " FROM projects ORDER BY repo"), {})
               .rows) {
        out.push_back(ProjectFromRow(row));
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  // --- API tokens ---

  absl::StatusOr<ApiToken> CreateToken(const ApiToken& t) override {
    if (t.name.empty()) return absl::InvalidArgumentError("token name is empty");
    if (t.hash.empty()) return absl::InvalidArgumentError("token hash is empty");
    ApiToken stored = t;
    absl::Status s = backend_->Run(TxMode::kWrite, [&](SqlTx& tx) -> absl::Status {
      if (!tx.Exec("SELECT 1 FROM api_tokens WHERE name = $1 AND revoked_at IS NULL", {t.name})
               .rows.empty()) {
        return absl::AlreadyExistsError(
            absl::StrCat("an API token named '", t.name, "' already exists; revoke it first"));
      }
      if (!tx.Exec("SELECT 1 FROM api_tokens WHERE hash = $1", {t.hash}).rows.empty()) {
        return absl::AlreadyExistsError("an API token with the same secret already exists");
      }
      try {
        const SqlResult r = tx.Exec(
            "INSERT INTO api_tokens (name, scope, hash, created_at, revoked_at) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING id",
            {t.name, std::string(TokenScopeName(t.scope)), t.hash, Ms(t.created_at),
             OptMs(t.revoked_at)});
        stored.id = r.rows.at(0).Int(0);
      } catch (const SqlError& e) {
        if (IsAlreadyExists(e)) {
          return absl::AlreadyExistsError(
              absl::StrCat("an API token named '", t.name, "' was created concurrently"));
        }
        throw;
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return stored;
  }

  absl::StatusOr<std::optional<ApiToken>> FindTokenByHash(const std::string& hash) override {
    std::optional<ApiToken> out;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      const SqlResult r = tx.Exec(absl::StrCat("SELECT ", kTokenColumns,
                                               " FROM api_tokens WHERE hash = $1 "
                                               "AND revoked_at IS NULL"),
                                  {hash});
      if (!r.rows.empty()) out = TokenFromRow(r.rows[0]);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::vector<ApiToken>> ListTokens() override {
    std::vector<ApiToken> out;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      for (const SqlRow& row :
           tx.Exec(absl::StrCat("SELECT ", kTokenColumns, " FROM api_tokens ORDER BY id"), {})
               .rows) {
        out.push_back(TokenFromRow(row));
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::Status RevokeToken(const std::string& name, TimePoint at) override {
    return backend_->Run(TxMode::kWrite, [&](SqlTx& tx) -> absl::Status {
      const SqlResult r =
          tx.Exec("UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                  {name, Ms(at)});
      if (r.affected == 0) {
        return absl::NotFoundError(
            absl::StrCat("no API token named '", name, "' (or it is already revoked)"));
      }
      return absl::OkStatus();
    });
  }

 private:
  // Merge rules (docs/state.md): an unleased key keeps its earliest due time; a leased key is
  // marked dirty and remembers the earliest time a re-run was asked for.
  // RecordDelivery's transaction for a group of deliveries (delivery_commit_queue.h), in two
  // statements whatever the group's size: one insert of every delivery, one enqueue of every key
  // the new ones imply. The answers are those of the calls one after the other: the first of a
  // repeated id inside the group is the one stored (or found), the others are duplicates. Rows
  // and keys go in sorted order, so two groups in flight at once lock them in the same order.
  absl::Status CommitDeliveries(std::span<DeliveryCommitQueue::Entry* const> group) {
    std::map<std::string_view, DeliveryCommitQueue::Entry*> first_of;  // by id
    for (DeliveryCommitQueue::Entry* e : group) first_of.emplace(e->delivery.id, e);
    return backend_->Run(TxMode::kWrite, [&](SqlTx& tx) {
      for (DeliveryCommitQueue::Entry* e : group) e->inserted = false;  // a retried body
      std::string sql = absl::StrCat("INSERT INTO deliveries (", kDeliveryColumns, ") VALUES ");
      std::vector<SqlValue> params;
      params.reserve(first_of.size() * 12);
      for (const auto& [id, e] : first_of) {
        const Delivery& d = e->delivery;
        const size_t n = params.size();
        absl::StrAppend(&sql, n == 0 ? "" : ", ", "(");
        for (size_t i = 1; i <= 12; ++i) absl::StrAppend(&sql, i == 1 ? "$" : ", $", n + i);
        absl::StrAppend(&sql, ")");
        params.insert(params.end(), {d.id, d.forge, d.event, d.action, d.repo, d.pr_number,
                                     d.body, Ms(d.received_at), d.kind, d.comment_id, d.author,
                                     d.text});
      }
      absl::StrAppend(&sql, " ON CONFLICT (id) DO NOTHING RETURNING id");
      const SqlResult stored = tx.Exec(sql, params);

      // The keys of the new deliveries, each at its earliest time: what enqueuing them one by
      // one would leave (store.h's merging rules).
      std::map<std::string, TimePoint> keys;
      for (const SqlRow& row : stored.rows) {
        const std::string id = row.Str(0);
        const auto found = first_of.find(id);
        if (found == first_of.end()) {
          throw SqlError(absl::InternalError(
              absl::StrCat("store: inserting deliveries returned an id not asked for: ", id)));
        }
        DeliveryCommitQueue::Entry* e = found->second;
        e->inserted = true;
        if (!e->work_key.has_value()) continue;
        auto [it, added] = keys.emplace(*e->work_key, e->delivery.received_at);
        if (!added) it->second = std::min(it->second, e->delivery.received_at);
      }
      if (keys.empty()) return absl::OkStatus();
      sql = "INSERT INTO work_queue (key, not_before, enqueued_at) VALUES ";
      params.clear();
      for (const auto& [key, at] : keys) {
        const size_t n = params.size();
        absl::StrAppend(&sql, n == 0 ? "" : ", ", "($", n + 1, ", $", n + 2, ", $", n + 2, ")");
        params.push_back(key);
        params.push_back(Ms(at));
      }
      absl::StrAppend(&sql, " ", kEnqueueMerge);
      tx.Exec(sql, params);
      return absl::OkStatus();
    });
  }

  void EnqueueIn(SqlTx& tx, const std::string& key, TimePoint not_before) {
    tx.Exec(absl::StrCat("INSERT INTO work_queue (key, not_before, enqueued_at) VALUES ($1, $2, $2) ",
                         kEnqueueMerge),
            {key, Ms(not_before)});
  }

  void AppendEvent(SqlTx& tx, const std::string& environment, std::string_view from_state,
                   std::string_view to_state, const std::string& reason, TimePoint at) {
    if (dialect_ == SqlDialect::kPostgres) {
      tx.Exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kEventIdLockKey, ")"), {});
    }
    tx.Exec(
        "INSERT INTO env_events (environment, from_state, to_state, reason, at) "
        "VALUES ($1, $2, $3, $4, $5)",
        {environment, std::string(from_state), std::string(to_state), reason, Ms(at)});
  }

  absl::StatusOr<int64_t> CountRows(const std::string& sql) {
    int64_t n = 0;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      n = tx.Exec(sql, {}).rows.at(0).Int(0);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return n;
  }

  absl::StatusOr<std::optional<Environment>> FindOneEnvironment(
      const std::string& sql, const std::vector<SqlValue>& params) {
    std::optional<Environment> out;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      const SqlResult r = tx.Exec(sql, params);
      if (!r.rows.empty()) out = EnvironmentFromRow(r.rows[0]);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  absl::StatusOr<std::vector<EnvEvent>> QueryEvents(const std::string& sql,
                                                    const std::vector<SqlValue>& params) {
    std::vector<EnvEvent> out;
    absl::Status s = backend_->Run(TxMode::kRead, [&](SqlTx& tx) {
      for (const SqlRow& row : tx.Exec(sql, params).rows) out.push_back(EventFromRow(row));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return out;
  }

  static absl::Status NameTakenError(const std::string& name) {
    return absl::AlreadyExistsError(
        absl::StrCat("environment name '", name, "' is already taken (names are never reused)"));
  }
  static absl::Status LivePrError(const std::string& project, int64_t pr,
                                  const std::string& existing) {
    return absl::AlreadyExistsError(
        absl::StrCat(project, " PR #", pr, " already has a live environment '", existing, "'"));
  }
  static absl::Status StaleVersionError(const std::string& name, int64_t had) {
    return absl::AbortedError(absl::StrCat("environment '", name,
                                           "' was changed concurrently (version ", had,
                                           " is stale); re-read it and retry"));
  }

  void SignalChange() {
    {
      std::lock_guard<std::mutex> lock(changes_mu_);
      ++changes_;
    }
    changes_cv_.notify_all();
  }

  std::unique_ptr<SqlBackend> backend_;
  std::mutex changes_mu_;
  std::condition_variable changes_cv_;
  uint64_t changes_ = 0;
  const SqlDialect dialect_;
  DeliveryCommitQueue delivery_commits_;
};

absl::string_view NowMillisSql(SqlDialect dialect) {
  return dialect == SqlDialect::kPostgres
             ? "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
             : "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
}

}  // namespace

absl::StatusOr<int> ApplyMigrations(SqlBackend& backend) {
  const SqlDialect dialect = backend.dialect();
  int version = 0;
  absl::Status s = backend.Run(TxMode::kMigrate, [&](SqlTx& tx) -> absl::Status {
    tx.ExecScript(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
    std::set<int64_t> applied;
    for (const SqlRow& row : tx.Exec("SELECT version FROM schema_migrations", {}).rows) {
      applied.insert(row.Int(0));
    }
    if (!applied.empty() && *applied.rbegin() > LatestSchemaVersion()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database has schema version ", *applied.rbegin(), ", newer than this build knows (",
          LatestSchemaVersion(), "): a newer ephd has used it; run that version or a newer one"));
    }
    for (const Migration& m : Migrations()) {
      if (applied.count(m.version) > 0) continue;
      try {
        tx.ExecScript(m.SqlFor(dialect));
      } catch (const SqlError& e) {
        throw SqlError(absl::Status(e.status().code(),
                                    absl::StrCat("migration ", m.version, " (", std::string(m.name),
                                                 ") failed: ", e.status().message())));
      }
      tx.Exec(absl::StrCat("INSERT INTO schema_migrations (version, name, applied_at) "
                           "VALUES ($1, $2, ",
                           NowMillisSql(dialect), ")"),
              {int64_t{m.version}, std::string(m.name)});
    }
    version = LatestSchemaVersion();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return version;
}

absl::StatusOr<std::unique_ptr<Store>> OpenSqlStore(std::unique_ptr<SqlBackend> backend) {
  absl::StatusOr<int> version = ApplyMigrations(*backend);
  if (!version.ok()) return version.status();
  return std::unique_ptr<Store>(new SqlStore(std::move(backend)));
}

}  // namespace eph::state
