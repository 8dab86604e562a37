// Spares: ready copies of a project's newest template (`eph_spr_<project hash>_<random>`), made
// ahead of time by one background thread, so a clone is a rename instead of a copy of the whole
// template. Recorded in eph_meta.spares (making -> ready); a clone takes one in a transaction
// that deletes its row, so two clones never take the same spare.
//
// Refills count every process's spares and hold a per-template advisory lock, so processes
// sharing a server keep `clone_spares` in all; a spare is made with the template's shared lock
// held, so the template is not rebuilt or dropped meanwhile. A failed refill is logged and not
// retried until the next clone asks again.
//
// Thread-safety: every method may be called from any thread. The refill thread starts with the
// first QueueRefill and stops in Stop (or the destructor).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <pqxx/types>
#include <string>
#include <thread>
#include <utility>

#include "pkg/base/random.h"
#include "pkg/database/admin_sql.h"
#include "pkg/database/bookkeeping.h"
#include "pkg/database/database_manager.h"

namespace eph::database {

struct SparesOptions {
  int clone_spares = 0;  // spares to keep of each project's newest template; 0: make none
  CloneCopy clone_copy = CloneCopy::kWalLog;
  std::string installation;  // written into each spare's marker
  Random* random = nullptr;  // spare names
};

class SparesPool {
 public:
  // `made` and `taken` count spares made and taken (DatabaseManager::spares_made/taken).
  SparesPool(const AdminServer& server, MetaSchema& meta, SparesOptions options,
             std::atomic<int64_t>& made, std::atomic<int64_t>& taken)
      : server_(server), meta_(meta), options_(std::move(options)), made_(made), taken_(taken) {}
  ~SparesPool() { Stop(); }
  SparesPool(const SparesPool&) = delete;
  SparesPool& operator=(const SparesPool&) = delete;

  // Asks the refill thread to make spares of `tpl`, the newest template of `project`. Returns at
  // once; a request for a template already queued is merged.
  void QueueRefill(const std::string& project, const std::string& tpl);
  // Waits until nothing is queued or being made, up to `timeout`. True when idle.
  bool WaitIdle(std::chrono::milliseconds timeout);
  // Stops the refill thread (a spare being made is finished first). Idempotent.
  void Stop();

  // Renames a ready spare of `tpl` to `name`, owned by role `name`, in one transaction that also
  // deletes its row: two clones never take the same spare, and a dropped spare is never taken.
  // False when there is none (or it cannot be used): the caller copies the template. The caller
  // holds the template's shared lock.
  bool Take(pqxx::connection_base& conn, const std::string& tpl, const std::string& name);

  // Deletes a spare's row (waiting for a clone taking it) and, if that was still there, drops
  // the database. Throws pqxx errors.
  static void Drop(pqxx::connection_base& conn, const std::string& name);

  // Drops spares of `project` (all projects when empty) that no clone will take: those of a
  // template that is not its project's newest ready one, and half-made ones nobody is making.
  // Throws pqxx errors.
  static void DropStale(pqxx::connection_base& conn, const std::string& project);

 private:
  bool Stopping();
  void RefillLoop();
  // Makes spares of `tpl` until there are `clone_spares` of it (counting every process's), as
  // long as it is its project's newest ready template. One refiller per template at a time.
  void Refill(const std::string& project, const std::string& tpl);
  bool Wanted(pqxx::connection_base& conn, const std::string& project, const std::string& tpl);
  // Called with the template's shared lock held.
  void Make(pqxx::connection_base& conn, const std::string& project, const std::string& tpl);

  const AdminServer& server_;
  MetaSchema& meta_;
  const SparesOptions options_;
  std::atomic<int64_t>& made_;
  std::atomic<int64_t>& taken_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> refills_;  // (project, template)
  bool refilling_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace eph::database
