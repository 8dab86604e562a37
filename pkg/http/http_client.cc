#include "pkg/http/http_client.h"

#include <curl/curl.h>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "fmt/format.h"

namespace eph::http {
namespace {

constexpr char kFailurePayload[] = "eph.dev/http/transport-failure";
constexpr char kNotSentPayload[] = "eph.dev/http/not-sent";

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  const Request* request = nullptr;
  Response* response = nullptr;
  CURL* easy = nullptr;
  bool too_large = false;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response->headers.clear();  // a new response: after a redirect or 100 Continue
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string value = line.substr(colon + 1);
    absl::StripAsciiWhitespace(&value);
    t->response->headers[absl::AsciiStrToLower(line.substr(0, colon))] = value;
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  if (t->request->on_body && status >= 200 && status < 300) {
    t->response->streamed = true;
    if (!t->request->on_body(std::string_view(data, len))) {
      t->response->stopped_by_reader = true;
      return 0;  // makes curl end the transfer
    }
    return len;
  }
  if (t->response->body.size() + len > t->request->max_response_bytes) {
    t->too_large = true;
    return 0;
  }
  t->response->body.append(data, len);
  return len;
}

absl::Status Failure(absl::Status st, TransportFailure kind, bool not_sent = false) {
  st.SetPayload(kFailurePayload, absl::Cord(std::to_string(static_cast<int>(kind))));
  if (not_sent) st.SetPayload(kNotSentPayload, absl::Cord("1"));
  return st;
}

// The strings and lists libcurl points into while a transfer runs: they outlive it.
struct Lists {
  curl_slist* headers = nullptr;
  curl_slist* connect_to = nullptr;
  curl_blob ca{};
  curl_blob cert{};
  curl_blob key{};
  char errbuf[CURL_ERROR_SIZE] = {0};
  ~Lists() {
    curl_slist_free_all(headers);
    curl_slist_free_all(connect_to);
  }
};

curl_blob BlobOf(const std::string& pem) {
  return curl_blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
}

void SetTls(CURL* easy, const TlsOptions& tls, Lists& lists) {
  if (tls.insecure_skip_verify) {
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!tls.ca_pem.empty()) {
    // Only this CA: not the system store as well.
    curl_easy_setopt(easy, CURLOPT_CAINFO, nullptr);
    curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
    lists.ca = BlobOf(tls.ca_pem);
    curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &lists.ca);
  }
  if (tls.client_certificate_pem.empty()) return;
  lists.cert = BlobOf(tls.client_certificate_pem);
  lists.key = BlobOf(tls.client_key_pem);
  curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
  curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &lists.cert);
  curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
  curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &lists.key);
}

void SetMethodAndBody(CURL* easy, const Request& request) {
  if (request.body) {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body->data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body->size()));
  }
  if (request.method == "GET" && !request.body) {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
}

void SetConnection(CURL* easy, const Request& request, Lists& lists) {
  if (!request.unix_socket.empty()) {
    curl_easy_setopt(easy, CURLOPT_UNIX_SOCKET_PATH, request.unix_socket.c_str());
  }
  if (!request.connect_to.empty()) {
    lists.connect_to = curl_slist_append(lists.connect_to, request.connect_to.c_str());
    curl_easy_setopt(easy, CURLOPT_CONNECT_TO, lists.connect_to);
  }
  if (!request.proxy.empty()) curl_easy_setopt(easy, CURLOPT_PROXY, request.proxy.c_str());
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  if (request.tcp_keepalive) {
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 10L);
  }
  if (request.max_redirects > 0) {
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, static_cast<long>(request.max_redirects));
  }
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
}

void SetOptions(CURL* easy, const Request& request, Transfer& transfer, Lists& lists) {
  for (const std::string& h : request.headers) {
    lists.headers = curl_slist_append(lists.headers, h.c_str());
  }
  // libcurl would otherwise send "Expect: 100-continue" for larger bodies.
  lists.headers = curl_slist_append(lists.headers, "Expect:");
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, lists.headers);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, lists.errbuf);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  if (!request.user_agent.empty()) {
    curl_easy_setopt(easy, CURLOPT_USERAGENT, request.user_agent.c_str());
  }
  if (request.accept_encoding) curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  SetConnection(easy, request, lists);
  SetMethodAndBody(easy, request);
  SetTls(easy, request.tls, lists);
}

struct Outcome {
  CURLcode result = CURLE_OK;
  bool cancelled = false;  // by `stop`
  bool multi_failed = false;
};

// Drives the transfer on the multi handle, so that `stop` can wake it at any moment.
Outcome Run(CURLM* multi, CURL* easy, const Request& request, Response& response,
            const std::stop_token& stop) {
  Outcome out;
  curl_multi_add_handle(multi, easy);
  auto wake = [multi] { curl_multi_wakeup(multi); };
  std::stop_callback<decltype(wake)> on_stop(stop, wake);
  int running = 1;
  while (true) {
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      out.multi_failed = true;
      break;
    }
    if (running == 0) break;
    if (stop.stop_requested()) {
      out.cancelled = true;
      break;
    }
    if (request.cancelled && request.cancelled()) {
      response.stopped_by_reader = true;
      break;
    }
    if (curl_multi_poll(multi, nullptr, 0, 1000, nullptr) != CURLM_OK) {
      out.multi_failed = true;
      break;
    }
  }
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) out.result = msg->data.result;
  }
  curl_multi_remove_handle(multi, easy);
  return out;
}

absl::Status TlsError(CURLcode result, const std::string& what, const std::string& detail) {
  if (result == CURLE_SSL_CERTPROBLEM) {
    return Failure(absl::FailedPreconditionError(fmt::format(
                       "{}: the client certificate or key cannot be used: {}", what, detail)),
                   TransportFailure::kClientCertificate);
  }
  const bool name = detail.find("name") != std::string::npos &&
                    detail.find("match") != std::string::npos;
  return Failure(absl::FailedPreconditionError(
                     fmt::format("{}: TLS verification failed: {}", what, detail)),
                 name ? TransportFailure::kTlsNameMismatch : TransportFailure::kTlsUntrusted);
}

absl::Status CurlError(CURLcode result, const std::string& what, const std::string& detail,
                       bool nothing_sent) {
  switch (result) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CERTPROBLEM:
      return TlsError(result, what, detail);
    case CURLE_OPERATION_TIMEDOUT:
      return Failure(absl::DeadlineExceededError(fmt::format("{}: timed out: {}", what, detail)),
                     TransportFailure::kTimeout, nothing_sent);
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return Failure(absl::UnavailableError(fmt::format("{}: cannot connect: {}", what, detail)),
                     TransportFailure::kConnect, /*not_sent=*/true);
    default:
      return Failure(absl::UnavailableError(fmt::format("{}: {}", what, detail)),
                     TransportFailure::kOther, nothing_sent);
  }
}

std::string What(const Request& request) {
  return request.what.empty() ? fmt::format("{} {}", request.method, request.url) : request.what;
}

}  // namespace

struct HttpClient::Handle {
  CURLM* multi = nullptr;  // holds the connection cache, so keep-alive survives a reset
  CURL* easy = nullptr;
  Handle() : multi(curl_multi_init()), easy(curl_easy_init()) {}
  ~Handle() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }
};

HttpClient::HttpClient(HttpClientOptions options) : options_(options) { GlobalInit(); }

HttpClient::~HttpClient() = default;

std::unique_ptr<HttpClient::Handle> HttpClient::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Handle> h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  return std::make_unique<Handle>();
}

void HttpClient::Release(std::unique_ptr<Handle> handle) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < options_.max_idle_handles) idle_.push_back(std::move(handle));
}

absl::StatusOr<Response> HttpClient::Perform(const Request& request, const std::stop_token& stop) {
  std::unique_ptr<Handle> h = Acquire();
  if (h->multi == nullptr || h->easy == nullptr) {
    return absl::InternalError("libcurl could not create a handle");
  }
  curl_easy_reset(h->easy);
  Response response;
  Transfer transfer{&request, &response, h->easy};
  Lists lists;
  SetOptions(h->easy, request, transfer, lists);
  const Outcome outcome = Run(h->multi, h->easy, request, response, stop);
  curl_off_t pretransfer_us = 0;
  curl_easy_getinfo(h->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
  curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &response.status);
  // The options point into this frame (URL, blobs, error buffer): forget them before the handle
  // goes back to the pool.
  curl_easy_reset(h->easy);
  Release(std::move(h));

  const std::string what = What(request);
  if (outcome.cancelled) {
    return Failure(absl::CancelledError(fmt::format("{}: cancelled", what)),
                   TransportFailure::kCancelled);
  }
  if (outcome.multi_failed) return absl::InternalError(fmt::format("{}: libcurl failure", what));
  if (response.stopped_by_reader) return response;
  if (transfer.too_large) {
    return Failure(absl::ResourceExhaustedError(fmt::format(
                       "{}: the answer is larger than {} bytes", what, request.max_response_bytes)),
                   TransportFailure::kTooLarge);
  }
  if (outcome.result == CURLE_OK) return response;
  const std::string detail =
      lists.errbuf[0] != '\0' ? lists.errbuf : curl_easy_strerror(outcome.result);
  const bool nothing_sent = pretransfer_us == 0 && !response.streamed && response.status == 0;
  return CurlError(outcome.result, what, detail, nothing_sent);
}

absl::StatusOr<Response> Perform(const Request& request, const std::stop_token& stop) {
  HttpClient client;
  return client.Perform(request, stop);
}

TransportFailure FailureOf(const absl::Status& status) {
  const auto payload = status.GetPayload(kFailurePayload);
  int kind = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &kind)) return TransportFailure::kNone;
  return static_cast<TransportFailure>(kind);
}

bool RequestNotSent(const absl::Status& status) {
  return status.GetPayload(kNotSentPayload).has_value();
}

absl::Status Prefixed(const absl::Status& status, std::string_view prefix) {
  absl::Status out(status.code(), fmt::format("{}: {}", prefix, std::string(status.message())));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

std::optional<Origin> OriginOf(const std::string& url) {
  CURLU* u = curl_url();
  char* host = nullptr;
  char* port = nullptr;
  char* scheme = nullptr;
  std::optional<Origin> out;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) {
    out = Origin{scheme, host, port};
  }
  curl_free(host);
  curl_free(port);
  curl_free(scheme);
  curl_url_cleanup(u);
  return out;
}

std::string HeaderOf(const Response& response, const std::string& name) {
  const auto it = response.headers.find(name);
  return it == response.headers.end() ? std::string() : it->second;
}

}  // namespace eph::http
