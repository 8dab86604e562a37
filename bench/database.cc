// database_bench: time until an environment's database is ready with `seed` and with `clone`
// (issue 8), on a shared PostgreSQL server, through DatabaseManager exactly as ephd uses it.
//
//   database_bench --admin-url postgresql://admin:pw@host:port/postgres
//                  [--tables 10] [--rows 5000] [--row-bytes 200] [--n 10] [--format copy]
//
// Writes seed scripts for `tables` tables of `rows` rows each (a primary key, a secondary index,
// text of about `row-bytes` bytes per row) either as pg_dump writes them (`copy`: COPY FROM
// STDIN with the rows in the script) or as server-side generate_series (`generate`, the
// cheapest possible seed), then times N environments with `seed`, the one-off
// template build, N environments with `clone` for each copy strategy (FILE_COPY, WAL_LOG), and
// N with `clone` taking a spare (a copy made ahead of time), spaced and back-to-back.
// Prints p50/max per mode and clone/seed ratios. Drops what it made. Prints figures; not a test.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <pqxx/pqxx>

#include "CLI/CLI.hpp"
#include "fmt/format.h"
#include "pkg/base/random.h"
#include "pkg/database/database_manager.h"

namespace {

using Clock = std::chrono::steady_clock;
using eph::database::CloneCopy;
using eph::database::DatabaseManager;
using eph::database::DatabaseManagerOptions;
using eph::database::EnsureRequest;
using eph::database::SeedStrategy;

struct Figures {
  double p50_ms = 0;
  double max_ms = 0;
};

Figures Summarise(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  return {ms[(ms.size() - 1) / 2], ms.back()};
}

std::unique_ptr<DatabaseManager> Manager(const std::string& url, CloneCopy copy, int spares = 0) {
  DatabaseManagerOptions options;
  options.admin_url = url;
  options.clone_copy = copy;
  options.clone_spares = spares;
  auto m = DatabaseManager::Create(options);
  if (!m.ok()) {
    std::cerr << "database_bench: " << m.status() << "\n";
    std::exit(1);
  }
  return *std::move(m);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"seed vs clone: time until an environment's database is ready"};
  std::string admin_url;
  int tables = 10, rows = 5000, row_bytes = 200, n = 10;
  app.add_option("--admin-url", admin_url, "admin connection URL of the shared server")->required();
  app.add_option("--tables", tables, "tables in the seed");
  app.add_option("--rows", rows, "rows per table");
  app.add_option("--row-bytes", row_bytes, "approximate bytes of text per row");
  app.add_option("--n", n, "environments per mode");
  std::string format = "copy";
  app.add_option("--format", format, "seed data as `copy` (pg_dump style) or `generate`")
      ->check(CLI::IsMember({"copy", "generate"}));
  CLI11_PARSE(app, argc, argv);

  const std::string tag = eph::SecureRandom::Instance().Hex(3);
  const std::filesystem::path repo =
      std::filesystem::temp_directory_path() / fmt::format("eph-database-bench-{}", tag);
  std::filesystem::create_directories(repo / "db");
  {
    std::ofstream schema(repo / "db/schema.sql");
    std::ofstream data(repo / "db/data.sql");
    const int md5s = std::max(1, row_bytes / 32);
    for (int t = 0; t < tables; ++t) {
      schema << fmt::format(
          "CREATE TABLE t{0} (id bigint PRIMARY KEY, account int NOT NULL, body text NOT NULL,\n"
          "  amount numeric(12,2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\n",
          t);
      if (format == "generate") {
        data << fmt::format(
            "INSERT INTO t{0} (id, account, body, amount)\n"
            "SELECT g, g % 997, repeat(md5(g::text || '{0}'), {1}), (g % 100000) / 100.0\n"
            "FROM generate_series(1, {2}) g;\n",
            t, md5s, rows);
      } else {
        data << fmt::format("COPY t{} (id, account, body, amount) FROM stdin;\n", t);
        std::string body;
        uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(t + 1);
        for (int r = 1; r <= rows; ++r) {
          body.clear();
          while (static_cast<int>(body.size()) < md5s * 32) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            body += fmt::format("{:016x}", x);
          }
          data << r << '\t' << r % 997 << '\t' << body << '\t' << (r % 100000) / 100 << '.'
               << fmt::format("{:02d}", r % 100) << "\n";
        }
        data << "\\.\n";
      }
      data << fmt::format("CREATE INDEX t{0}_account ON t{0} (account);\n", t);
    }
    data << "ANALYZE;\n";
  }
  const std::string project = fmt::format("bench-{}", tag);
  auto request = [&](const std::string& env, SeedStrategy strategy) {
    EnsureRequest r;
    r.environment = env;
    r.project = project;
    r.source_dir = repo;
    r.database.strategy = strategy;
    r.database.scripts = {"db/schema.sql", "db/data.sql"};
    r.database.timeout = std::chrono::seconds(3600);
    return r;
  };
  auto timed = [&](DatabaseManager& m, const EnsureRequest& r) {
    const auto start = Clock::now();
    auto result = m.Ensure(r);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!result.ok()) {
      std::cerr << "database_bench: " << r.environment << ": " << result.status() << "\n";
      std::exit(1);
    }
    return std::make_pair(ms, result->credentials.dbname);
  };

  auto manager = Manager(admin_url, CloneCopy::kWalLog);
  std::vector<std::string> made;
  std::vector<double> seed_ms;
  std::string one_db;
  for (int i = 0; i < n; ++i) {
    const std::string env = fmt::format("bench-seed-{}-{}", tag, i);
    auto [ms, db] = timed(*manager, request(env, SeedStrategy::kSeed));
    seed_ms.push_back(ms);
    one_db = db;
    made.push_back(env);
  }
  int64_t bytes = 0;
  {
    pqxx::connection conn(admin_url);
    pqxx::nontransaction tx(conn);
    bytes = tx.exec_params("SELECT pg_database_size($1)", one_db)[0][0].as<int64_t>();
  }
  for (const std::string& env : made) (void)manager->Drop(env);
  made.clear();

  // The first clone builds the template (seed once, then copy).
  const std::string first = fmt::format("bench-first-{}", tag);
  const double build_ms = timed(*manager, request(first, SeedStrategy::kClone)).first;
  made.push_back(first);

  // Interleaved (alternating which goes first) so drift in the server's state (dirty buffers,
  // WAL, other load on the machine) does not favour one strategy.
  std::map<std::string, std::vector<double>> clone_ms;
  auto file_copy = Manager(admin_url, CloneCopy::kFileCopy);
  auto wal_log = Manager(admin_url, CloneCopy::kWalLog);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 2; ++k) {
      const bool file = (i + k) % 2 == 0;
      const std::string env = fmt::format("bench-{}-{}-{}", file ? "file" : "wal", tag, i);
      clone_ms[file ? "FILE_COPY" : "WAL_LOG"].push_back(
          timed(file ? *file_copy : *wal_log, request(env, SeedStrategy::kClone)).first);
      made.push_back(env);
    }
  }

  // Spares (`clone_spares: 1`, WAL_LOG): a copy of the template is made in the background after
  // each clone, and the next clone takes it by renaming. "spaced": environments arrive further
  // apart than one copy takes (the wait for the refill is not timed); "back-to-back": no wait,
  // so only the first finds a spare and the others copy while the refill also copies.
  auto spared = Manager(admin_url, CloneCopy::kWalLog, 1);
  {
    const std::string warm = fmt::format("bench-warm-{}", tag);
    (void)timed(*spared, request(warm, SeedStrategy::kClone));  // starts the first refill
    made.push_back(warm);
  }
  std::vector<double> spaced_ms, burst_ms;
  for (int i = 0; i < n; ++i) {
    if (!spared->WaitForSpares(std::chrono::minutes(10))) {
      std::cerr << "database_bench: the spare was not made within 10 minutes\n";
      return 1;
    }
    const std::string env = fmt::format("bench-spare-{}-{}", tag, i);
    spaced_ms.push_back(timed(*spared, request(env, SeedStrategy::kClone)).first);
    made.push_back(env);
  }
  const int64_t spaced_taken = spared->spares_taken();
  (void)spared->WaitForSpares(std::chrono::minutes(10));
  for (int i = 0; i < n; ++i) {
    const std::string env = fmt::format("bench-burst-{}-{}", tag, i);
    burst_ms.push_back(timed(*spared, request(env, SeedStrategy::kClone)).first);
    made.push_back(env);
  }
  const int64_t burst_taken = spared->spares_taken() - spaced_taken;
  (void)spared->WaitForSpares(std::chrono::minutes(10));
  spared.reset();

  for (const std::string& env : made) (void)manager->Drop(env);
  (void)manager->SweepOrphans({});
  std::filesystem::remove_all(repo);

  const Figures seed = Summarise(seed_ms);
  fmt::print("database size      {:.1f} MB ({} tables x {} rows, ~{} B/row, seed as {})\n",
             static_cast<double>(bytes) / 1e6, tables, rows, row_bytes, format);
  fmt::print("seed               p50 {:8.0f} ms   max {:8.0f} ms   (N={})\n", seed.p50_ms,
             seed.max_ms, n);
  fmt::print("template build     {:8.0f} ms (first clone: seed into the template + copy)\n",
             build_ms);
  for (const auto& [name, ms] : clone_ms) {
    const Figures f = Summarise(ms);
    fmt::print(
        "clone {:<10}   p50 {:8.0f} ms   max {:8.0f} ms   (N={})   p50 ratio clone/seed {:.3f}\n",
        name, f.p50_ms, f.max_ms, n, f.p50_ms / seed.p50_ms);
  }
  const Figures spaced = Summarise(spaced_ms);
  const Figures burst = Summarise(burst_ms);
  fmt::print(
      "clone, spare spaced p50 {:8.0f} ms   max {:8.0f} ms   (N={}, {} from a spare)   p50 ratio "
      "clone/seed {:.3f}\n",
      spaced.p50_ms, spaced.max_ms, n, spaced_taken, spaced.p50_ms / seed.p50_ms);
  fmt::print(
      "clone, back-to-back p50 {:8.0f} ms   max {:8.0f} ms   (N={}, {} from a spare)   p50 ratio "
      "clone/seed {:.3f}\n",
      burst.p50_ms, burst.max_ms, n, burst_taken, burst.p50_ms / seed.p50_ms);
  return 0;
  return 0;
}
