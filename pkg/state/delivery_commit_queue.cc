#include "pkg/state/delivery_commit_queue.h"

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace eph::state {

DeliveryCommitQueue::DeliveryCommitQueue(CommitFn commit, size_t max_group, int max_in_flight)
    : commit_(std::move(commit)),
      max_group_(std::max<size_t>(max_group, 1)),
      max_in_flight_(std::max(max_in_flight, 1)) {}

absl::StatusOr<bool> DeliveryCommitQueue::Record(const Delivery& d,
                                                 const std::optional<std::string>& work_key) {
  Waiter mine{.entry = {.delivery = d, .work_key = work_key},
              .result = absl::InternalError("store: delivery was never committed")};
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(&mine);
  while (!mine.done) {
    if (in_flight_ >= max_in_flight_ || queue_.empty()) {
      // Woken when done, or as the oldest waiter when a commit slot frees up.
      mine.wake.wait(lock);
      continue;
    }
    // Lead: take the oldest queued deliveries (this caller's among them unless more than a
    // group's worth are ahead of it, or another leader took it: then it waits, or leads again,
    // until its own is done).
    ++in_flight_;
    const size_t n = std::min(queue_.size(), max_group_);
    std::vector<Waiter*> group(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
    lock.unlock();
    CommitGroup(group);
    lock.lock();
    --in_flight_;
    // Each waiter is woken by itself: no herd of threads that would only go back to sleep.
    for (Waiter* w : group) {
      w->done = true;
      if (w != &mine) w->wake.notify_one();
    }
    if (!queue_.empty()) queue_.front()->wake.notify_one();
  }
  return std::move(mine.result);
}

absl::Status DeliveryCommitQueue::RunCommit(std::span<Entry* const> group) {
  // A throw would leave in_flight_ counting it and every later caller waiting for ever.
  try {
    return commit_(group);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("store: committing deliveries: ", e.what()));
  } catch (...) {
    return absl::InternalError("store: committing deliveries: unknown exception");
  }
}

void DeliveryCommitQueue::CommitGroup(std::span<Waiter* const> group) {
  std::vector<Entry*> entries;
  entries.reserve(group.size());
  for (Waiter* w : group) entries.push_back(&w->entry);
  const absl::Status status = RunCommit(entries);
  size_t alone = 0;
  if (status.ok()) {
    for (Waiter* w : group) w->result = w->entry.inserted;
  } else if (group.size() == 1 || absl::IsUnavailable(status)) {
    for (Waiter* w : group) w->result = status;
  } else {
    for (Waiter* w : group) {
      Entry* one[] = {&w->entry};
      w->entry.inserted = false;
      const absl::Status s = RunCommit(one);
      w->result = s.ok() ? absl::StatusOr<bool>(w->entry.inserted) : absl::StatusOr<bool>(s);
      ++alone;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.groups;
  stats_.deliveries += group.size();
  stats_.retried_alone += alone;
}

DeliveryCommitStats DeliveryCommitQueue::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  DeliveryCommitStats out = stats_;
  out.waiting = queue_.size();
  return out;
}

}  // namespace eph::state
