#include "pkg/forge/github/github_http.h"

#include <curl/curl.h>

#include <mutex>

#include "absl/strings/ascii.h"
#include "fmt/format.h"

namespace eph::forge::github {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  HttpAnswer* answer = nullptr;
  size_t max_body = 0;
  bool too_large = false;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->answer->headers.clear();  // a new response: after a redirect or 100 Continue
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    absl::StripAsciiWhitespace(&value);
    t->answer->headers[name] = value;
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  if (t->answer->body.size() + len > t->max_body) {
    t->too_large = true;
    return 0;
  }
  t->answer->body.append(data, len);
  return len;
}

}  // namespace

absl::StatusOr<HttpAnswer> PerformHttp(const HttpExchange& exchange) {
  GlobalInit();
  CURL* easy = curl_easy_init();
  if (easy == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  HttpAnswer answer;
  Transfer transfer{&answer, exchange.max_response_bytes};
  curl_slist* headers = nullptr;
  for (const std::string& h : exchange.headers) headers = curl_slist_append(headers, h.c_str());
  // libcurl would otherwise send "Expect: 100-continue" for larger bodies.
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(easy, CURLOPT_URL, exchange.url.c_str());
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, exchange.method.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  if (exchange.body.has_value()) {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, exchange.body->data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(exchange.body->size()));
  } else if (exchange.method == "GET") {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10'000L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(exchange.timeout.count()));
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  const CURLcode rc = curl_easy_perform(easy);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &answer.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(easy);
  if (transfer.too_large) {
    return absl::ResourceExhaustedError(fmt::format("GitHub answered more than {} bytes for {}",
                                                    exchange.max_response_bytes, exchange.url));
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return absl::DeadlineExceededError(
        fmt::format("GitHub did not answer {} {} in time", exchange.method, exchange.url));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(fmt::format("GitHub unreachable ({} {}): {}", exchange.method,
                                              exchange.url, curl_easy_strerror(rc)));
  }
  return answer;
}

}  // namespace eph::forge::github
