#include "pkg/dashboard/dashboard.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "pkg/base/sha256.h"

namespace eph::dashboard {

using server::HttpRequest;
using server::HttpResponse;

namespace {

constexpr std::string_view kIndex = "index.html";

// Debian's Abseil has a string_view of its own, so its split and strip helpers do not take
// std::string_view; these few are all this file needs.
std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == sep) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

bool ConsumePrefix(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) return false;
  text.remove_prefix(prefix.size());
  return true;
}

std::string_view StripSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string_view Extension(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  return name.substr(dot);
}

// A path the HTTP server would have refused (server::ParseRequestTarget) can still reach here
// from other callers; none of them may name a file.
bool IsCanonical(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  const std::string_view rest = path.substr(1);
  if (rest.empty()) return true;
  const std::vector<std::string_view> segments = Split(rest, '/');
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string_view s = segments[i];
    if (s.empty() && i + 1 < segments.size()) return false;  // "//"; a trailing '/' is fine
    if (s == "." || s == "..") return false;
    for (char c : s) {
      if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
    }
  }
  return true;
}

std::string EscapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// If-None-Match holds `*` or a list of entity tags; a weak one matches its strong twin (the
// weak comparison RFC 9110 prescribes for this header).
bool NoneMatchHits(std::string_view header, std::string_view etag) {
  for (std::string_view tag : Split(header, ',')) {
    tag = StripSpaces(tag);
    if (tag == "*") return true;
    ConsumePrefix(tag, "W/");
    if (tag == etag) return true;
  }
  return false;
}

void SetSecurityHeaders(HttpResponse& res) {
  res.headers["X-Content-Type-Options"] = "nosniff";
  // The dashboard holds an API token, so no other site may frame it (clickjacking its buttons)
  // and nothing but its own files may run in it. Its build has no inline scripts or styles
  // (React sets styles through the DOM, which CSP allows); Vite may inline small images and
  // fonts as data: URLs. The API, the event stream and logs are fetched from the same origin.
  res.headers["Content-Security-Policy"] =
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
      "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
      "form-action 'self'; frame-ancestors 'none'";
  res.headers["X-Frame-Options"] = "DENY";
  res.headers["Referrer-Policy"] = "no-referrer";
}

void NotFound(HttpResponse& res) {
  res.SetText(404, "404 not found\n", "text/plain; charset=utf-8");
  res.headers["Cache-Control"] = "no-cache";
}

void MissingPage(std::string_view reason, HttpResponse& res) {
  res.SetText(404,
              absl::StrCat("<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
                           "<title>Eph: no dashboard</title></head>\n<body>\n"
                           "<h1>This ephd has no dashboard</h1>\n<p>",
                           EscapeHtml(reason),
                           "</p>\n<p>The API (/api/v1) and the eph command line work without "
                           "it.</p>\n</body>\n</html>\n"),
              "text/html; charset=utf-8");
  res.headers["Cache-Control"] = "no-cache";
}

// index.html served for a client route below the root ("/environments/x") gets a <base> back
// to the directory it lives in: its asset URLs are relative ("./assets/..."; Vite's `base: './'`,
// which lets ephd sit behind a path prefix) and would otherwise resolve under the route.
void RebaseIndex(size_t depth, DashboardFile& index) {
  if (depth == 0) return;
  const size_t head = index.bytes.find("<head>");
  if (head == std::string::npos) return;
  std::string base = "<base href=\"";
  for (size_t i = 0; i < depth; ++i) base += "../";
  base += "\">";
  index.bytes.insert(head + 6, base);
  // Another body, so another tag: `"<hash>"` becomes `"<hash>-<depth>"`.
  if (index.etag.size() >= 2) index.etag.insert(index.etag.size() - 1, "-" + std::to_string(depth));
}

std::string EtagOf(std::string_view bytes) {
  return absl::StrCat("\"", Sha256Hex(bytes).substr(0, 32), "\"");
}

}  // namespace

std::string ContentTypeFor(std::string_view path) {
  static const std::map<std::string_view, std::string_view, std::less<>> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
      {".woff2", "font/woff2"},
      {".webmanifest", "application/manifest+json"},
  };
  auto it = kTypes.find(Extension(path));
  return std::string(it == kTypes.end() ? "application/octet-stream" : it->second);
}

bool IsHashedAsset(std::string_view path) {
  if (!ConsumePrefix(path, "assets/")) return false;
  if (path.find('/') != std::string_view::npos) return false;
  // Vite's "[name]-[hash]": the hash is 8 characters of base64url, which may hold '-' itself, so
  // it is read from the end of the name (before the first '.', for "x-1a2B3c4D.js.map").
  const std::string_view stem = path.substr(0, path.find('.'));
  constexpr size_t kHash = 8;
  if (stem.size() < kHash + 2 || stem[stem.size() - kHash - 1] != '-') return false;
  bool all_lower = true;
  for (char c : stem.substr(stem.size() - kHash)) {
    const bool lower = c >= 'a' && c <= 'z';
    const bool other = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!lower && !other) return false;
    all_lower = all_lower && lower;
  }
  // A word such as "-fallback" is a name, not a hash. Getting this wrong the other way only costs
  // a revalidation, while calling a mutable file immutable would pin a stale copy for a year.
  return !all_lower;
}

EmbeddedDashboard::EmbeddedDashboard(std::span<const EmbeddedFile> files, std::string absence)
    : absence_(std::move(absence)) {
  for (const EmbeddedFile& f : files) {
    files_.emplace(f.path, &f);
    total_bytes_ += f.size;
  }
}

std::optional<DashboardFile> EmbeddedDashboard::Find(std::string_view path) const {
  auto it = files_.find(path);
  if (it == files_.end()) return std::nullopt;
  const EmbeddedFile& f = *it->second;
  return DashboardFile{
      .bytes = std::string(reinterpret_cast<const char*>(f.data), f.size),
      .etag = std::string(f.etag),
  };
}

std::string EmbeddedDashboard::Missing() const {
  if (files_.contains(kIndex)) return "";
  return absl::StrCat(
      absence_.empty() ? std::string("This ephd was built without its dashboard.") : absence_, " ",
      kHowToGetTheDashboard);
}

std::string EmbeddedDashboard::Describe() const {
  return absl::StrCat("built in (", files_.size(), " files, ", (total_bytes_ + 1023) / 1024,
                      " KiB)");
}

DirectoryDashboard::DirectoryDashboard(std::string root) : root_(std::move(root)) {}

std::optional<DashboardFile> DirectoryDashboard::Find(std::string_view path) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root(root_);
  const fs::path file = (root / fs::path(path)).lexically_normal();
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  // A symlink inside the directory must not lead outside it.
  const fs::path canonical_root = fs::weakly_canonical(root, ec);
  if (ec) return std::nullopt;
  const fs::path canonical_file = fs::weakly_canonical(file, ec);
  if (ec) return std::nullopt;
  std::string r = canonical_root.string();
  if (r.back() != '/') r += '/';
  if (canonical_file.string().rfind(r, 0) != 0) return std::nullopt;
  std::ifstream in(canonical_file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  DashboardFile out{.bytes = std::move(content).str()};
  out.etag = EtagOf(out.bytes);
  return out;
}

std::string DirectoryDashboard::Missing() const {
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::filesystem::path(root_) / kIndex, ec)) return "";
  return absl::StrCat("--web-dir ", root_,
                      " has no index.html: build the dashboard there (`npm run build` in web/ "
                      "writes web/dist), or leave out --web-dir to use the one built into ephd.");
}

std::string DirectoryDashboard::Describe() const { return "from " + root_ + " (--web-dir)"; }

namespace {

// Whether an Accept header asks for an HTML page, as a browser's navigation does.
bool WantsHtml(std::string_view accept) {
  const std::string lower = absl::AsciiStrToLower(absl::string_view(accept.data(), accept.size()));
  return lower.find("text/html") != std::string::npos ||
         lower.find("application/xhtml+xml") != std::string::npos;
}

}  // namespace

void ServeDashboard(const DashboardFiles* files, const HttpRequest& req, HttpResponse& res) {
  SetSecurityHeaders(res);
  if (!IsCanonical(req.path)) return NotFound(res);
  std::string rel = req.path.substr(1);
  const bool directory = rel.empty() || rel.back() == '/';
  if (directory) rel += kIndex;
  // A client route: a path whose last segment has no extension, or a directory, asked for by a
  // browser (it wants HTML). An API client with a wrong base URL (EPH_SERVER=http://host/wrong)
  // asks for JSON and gets the 404 that tells it so, not a page it cannot read. Where index.html
  // itself is asked for and missing, the page that says why is the answer too.
  const bool route = rel == kIndex || ((directory || Extension(req.path).empty()) &&
                                       WantsHtml(req.Header("Accept")));
  std::optional<DashboardFile> file;
  if (files != nullptr) file = files->Find(rel);
  if (!file && route) {
    rel = std::string(kIndex);
    if (files != nullptr) file = files->Find(rel);
    if (file) {
      const size_t slashes = std::count(req.path.begin(), req.path.end(), '/');
      RebaseIndex(slashes - 1, *file);
    }
  }
  if (!file) {
    if (!route) return NotFound(res);
    std::string why = files != nullptr ? files->Missing() : "";
    if (why.empty()) why = absl::StrCat("This server has no dashboard. ", kHowToGetTheDashboard);
    return MissingPage(why, res);
  }
  res.headers["ETag"] = file->etag;
  res.headers["Cache-Control"] =
      IsHashedAsset(rel) ? "public, max-age=31536000, immutable" : "no-cache";
  const std::string content_type = ContentTypeFor(rel);
  if (NoneMatchHits(req.Header("If-None-Match"), file->etag)) {
    res.SetText(304, "", content_type);
    return;
  }
  res.SetText(200, std::move(file->bytes), content_type);
}

}  // namespace eph::dashboard
