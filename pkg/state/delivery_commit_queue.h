// DeliveryCommitQueue: group commit for Store::RecordDelivery. A caller that finds a commit slot
// free (at most max_in_flight transactions run at once) commits at once; callers that arrive
// while every slot is busy queue up, and when a slot frees up the oldest of them (the leader)
// takes up to max_group queued deliveries, oldest first, and commits them in one transaction.
// Every caller returns only once its own delivery is committed (or has failed), with its own
// answer. One commit (one round of BEGIN/COMMIT, one WAL flush) then serves many webhook senders.
//
// No timer: a lone sender never waits for company, so it pays nothing; groups form only from
// callers that arrived while the slots were busy. The batch is bounded by max_group.
//
// Failures: a group's transaction is all or nothing. If it fails with Unavailable (database down,
// pool exhausted, commit in doubt) every caller in the group gets that status: nothing was
// acknowledged and the sender retries. Any other failure (a constraint, a conflict) may belong to
// one delivery only, so each delivery of the group is then committed alone and gets its own
// answer: one bad delivery never fails, loses or wrongly acknowledges the others.
//
// Dedupe is the commit function's: it answers as if the group's deliveries had been recorded one
// after the other in queue order, so a repeated id inside one group reads exactly as two calls in
// a row (the first is stored, the second is a duplicate).
//
// Thread-safety: Record may be called from many threads at once; the commit function is called
// from up to max_in_flight threads at once, each with its own group.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pkg/state/store.h"

namespace eph::state {

class DeliveryCommitQueue {
 public:
  struct Entry {
    const Delivery& delivery;
    const std::optional<std::string>& work_key;
    // Set by the commit function: true if the delivery was new (stored, key enqueued), false if
    // its id was already stored. Read only when the commit returned OK.
    bool inserted = false;
  };
  // Runs one transaction that records every entry in order (as Store::RecordDelivery would,
  // setting `inserted`) and commits only if all of them succeeded. Returns the transaction's
  // status (anything it throws becomes Internal).
  using CommitFn = std::function<absl::Status(std::span<Entry* const> group)>;

  // At most `max_group` deliveries per transaction, at most `max_in_flight` transactions at
  // once.
  DeliveryCommitQueue(CommitFn commit, size_t max_group, int max_in_flight = 1);
  DeliveryCommitQueue(const DeliveryCommitQueue&) = delete;
  DeliveryCommitQueue& operator=(const DeliveryCommitQueue&) = delete;

  // Blocks until the delivery's group is committed; Store::RecordDelivery's answer.
  absl::StatusOr<bool> Record(const Delivery& d, const std::optional<std::string>& work_key);

  DeliveryCommitStats Stats() const;

 private:
  struct Waiter {
    Entry entry;
    bool done = false;
    absl::StatusOr<bool> result;
    std::condition_variable wake;
  };

  // commit_, with anything it throws turned into Internal.
  absl::Status RunCommit(std::span<Entry* const> group);
  // Commits `group` (the caller is the leader, outside the lock) and fills in each result.
  void CommitGroup(std::span<Waiter* const> group);

  const CommitFn commit_;
  const size_t max_group_;
  const int max_in_flight_;

  mutable std::mutex mu_;
  std::deque<Waiter*> queue_;  // waiting for a group, oldest first
  int in_flight_ = 0;          // groups being committed by their leaders
  DeliveryCommitStats stats_;  // without `waiting`, which is queue_.size()
};

}  // namespace eph::state
