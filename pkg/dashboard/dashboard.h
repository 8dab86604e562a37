// The dashboard's files and how ephd serves them at `/`.
//
// DashboardFiles is where the files come from: the table compiled into ephd (EmbeddedDashboard,
// the default) or a directory on disk (DirectoryDashboard, `--web-dir`, for working on the page).
// ServeDashboard is the one HTTP policy for both: content type by extension, a year of
// `immutable` caching for Vite's content-hashed assets and `no-cache` for everything else, an
// ETag with `If-None-Match` → 304, index.html for client routes (paths without a file
// extension), a plain 404 for a missing file, and a page that says why the dashboard is missing
// and how to get it where index.html would be.
//
// Thread-safety: both DashboardFiles implementations are immutable after construction; Find,
// Missing and ServeDashboard may be called from any number of threads at once.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "pkg/dashboard/embedded.h"
#include "pkg/server/http.h"

namespace eph::dashboard {

// One file as served: its bytes and its strong ETag (quoted, as sent on the wire).
struct DashboardFile {
  std::string bytes;
  std::string etag;
};

class DashboardFiles {
 public:
  virtual ~DashboardFiles() = default;
  // The file at `path`, relative to the dashboard's root ("index.html", "assets/app-1a2B3c4D.js").
  // The caller passes only canonical paths: no leading '/', no empty, "." or ".." segment, no
  // '\\' or NUL. nullopt: no such file.
  virtual std::optional<DashboardFile> Find(std::string_view path) const = 0;
  // Empty when there is a dashboard (an index.html); otherwise why there is none and how to get
  // one, in a sentence or two a user can act on. ephd logs it and serves it at `/`.
  virtual std::string Missing() const = 0;
  // Where the files come from, for the start-up log.
  virtual std::string Describe() const = 0;
};

// The files compiled into the binary (embedded.h), or any table that outlives this object (a
// test's). `absence` says why the table is empty when it is (EmbeddedDashboardAbsence()).
class EmbeddedDashboard final : public DashboardFiles {
 public:
  EmbeddedDashboard(std::span<const EmbeddedFile> files, std::string absence);
  std::optional<DashboardFile> Find(std::string_view path) const override;
  std::string Missing() const override;
  std::string Describe() const override;

 private:
  std::map<std::string_view, const EmbeddedFile*, std::less<>> files_;
  std::string absence_;
  size_t total_bytes_ = 0;
};

// Files read from a directory at each request, so a rebuilt dashboard shows on reload. Nothing
// outside the directory is ever served, through ".." or through a symlink.
class DirectoryDashboard final : public DashboardFiles {
 public:
  explicit DirectoryDashboard(std::string root);
  std::optional<DashboardFile> Find(std::string_view path) const override;
  std::string Missing() const override;
  std::string Describe() const override;

 private:
  std::string root_;
};

// Answers a GET or HEAD for a dashboard path from `files` (nullptr: no dashboard at all). HEAD is
// answered like GET: the HTTP server sends a HEAD response's headers without its body. The
// caller routes only paths that are not the server's own (/api, /healthz, /webhooks/, ...) here.
void ServeDashboard(const DashboardFiles* files, const server::HttpRequest& req,
                    server::HttpResponse& res);

// Content type for a dashboard file, by extension; application/octet-stream when unknown.
std::string ContentTypeFor(std::string_view path);

// True for the files Vite names after their content: under assets/, "<name>-<8-character
// hash>.<ext>". Only those may be cached as immutable.
bool IsHashedAsset(std::string_view path);

// What to do to get the dashboard, appended to every Missing() reason.
inline constexpr char kHowToGetTheDashboard[] =
    "To get it: install Node.js 20.19 or newer, run `npm ci` in web/ and rebuild ephd; or start "
    "ephd with --web-dir pointing at a built dashboard (`npm run build` in web/ writes web/dist).";

}  // namespace eph::dashboard
