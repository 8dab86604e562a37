// The dashboard compiled into ephd: a table of files generated at build time from Vite's output
// by pkg/dashboard/embed_files.cmake (pkg/dashboard/CMakeLists.txt builds web/ into the build
// tree first). Built without Node.js or web/node_modules, or with -DEPH_EMBED_DASHBOARD=OFF, the
// table is empty and EmbeddedDashboardAbsence() says why.
//
// Thread-safety: constant data.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace eph::dashboard {

struct EmbeddedFile {
  std::string_view path;  // relative to the dashboard's root: "index.html", "assets/x-1a2B3c4D.js"
  std::string_view etag;  // strong and quoted: "\"<first 32 hex digits of the SHA-256>\""
  const unsigned char* data;
  size_t size;
};

// Defined in the generated source (libraries eph_dashboard_embedded, or a test's own table).
std::span<const EmbeddedFile> EmbeddedDashboardFiles();
// Empty when the table holds the dashboard; otherwise why it does not.
std::string_view EmbeddedDashboardAbsence();

}  // namespace eph::dashboard
