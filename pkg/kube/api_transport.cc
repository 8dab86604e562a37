#include "pkg/kube/curl_transport.h"

#include <curl/curl.h>

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "fmt/format.h"

namespace eph::kube {
namespace {

constexpr char kNotSentPayload[] = "eph.dev/kube/not-sent";

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  CURL* easy = nullptr;
  size_t max_body = 0;
  bool too_large = false;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response->headers.clear();  // a new response (after 100 Continue, say)
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    absl::StripAsciiWhitespace(&value);
    t->response->headers[name] = value;
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
  if (t->response->body.size() + len > t->max_body) {
    t->too_large = true;
    return 0;
  }
  t->response->body.append(data, len);
  return len;
}

absl::Status NotSent(absl::Status st) {
  st.SetPayload(kNotSentPayload, absl::Cord("1"));
  return st;
}

}  // namespace

struct CurlTransport::Handle {
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  Handle() : multi(curl_multi_init()), easy(curl_easy_init()) {}
  ~Handle() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }
};

bool RequestNotSent(const absl::Status& status) {
  return status.GetPayload(kNotSentPayload).has_value();
}

CurlTransport::CurlTransport(const KubeConfig& config, TransportOptions options)
    : server_(config.server),
      url_base_(config.server),
      ca_pem_(config.ca_pem),
      ca_origin_(config.ca_origin),
      insecure_(config.insecure_skip_tls_verify),
      proxy_url_(config.proxy_url),
      options_(std::move(options)) {
  GlobalInit();
  if (!config.tls_server_name.empty()) {
    // Verify the certificate against tls-server-name while connecting to the real host: ask for
    // the name in the URL and tell curl where that name really is.
    CURLU* u = curl_url();
    char* host = nullptr;
    char* port = nullptr;
    char* scheme = nullptr;
    if (curl_url_set(u, CURLUPART_URL, server_.c_str(), 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) {
      url_base_ = fmt::format("{}://{}:{}", scheme, config.tls_server_name, port);
      connect_to_ = fmt::format("{}:{}:{}:{}", config.tls_server_name, port, host, port);
    }
    curl_free(host);
    curl_free(port);
    curl_free(scheme);
    curl_url_cleanup(u);
  }
}

CurlTransport::~CurlTransport() = default;

std::unique_ptr<CurlTransport::Handle> CurlTransport::Acquire() {
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

void CurlTransport::Release(std::unique_ptr<Handle> handle) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < options_.max_idle_handles) idle_.push_back(std::move(handle));
}

absl::StatusOr<HttpResponse> CurlTransport::Perform(const HttpRequest& request,
                                                    const Credentials& credentials,
                                                    const std::stop_token& stop) {
  std::unique_ptr<Handle> h = Acquire();
  if (h->multi == nullptr || h->easy == nullptr) {
    return absl::InternalError("libcurl could not create a handle");
  }
  CURL* easy = h->easy;
  // Keeps the connection cache (it lives in the multi handle), resets every option.
  curl_easy_reset(easy);

  const std::string url = url_base_ + request.path_and_query;
  const std::string what = fmt::format("{} {}", request.method, server_ + request.path_and_query);
  HttpResponse response;
  Transfer transfer{&request, &response, easy, options_.max_response_bytes, false};
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, ("Accept: " + request.accept).c_str());
  headers = curl_slist_append(headers, "Expect:");
  if (request.body) {
    headers = curl_slist_append(headers, ("Content-Type: " + request.content_type).c_str());
  }
  if (!credentials.bearer_token.empty()) {
    headers =
        curl_slist_append(headers, ("Authorization: Bearer " + credentials.bearer_token).c_str());
  }
  curl_slist* connect_to = nullptr;
  if (!connect_to_.empty()) connect_to = curl_slist_append(connect_to, connect_to_.c_str());

  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  if (connect_to != nullptr) curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connect_to);
  if (!proxy_url_.empty()) curl_easy_setopt(easy, CURLOPT_PROXY, proxy_url_.c_str());
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 10L);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  if (!request.on_body) curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");

  if (request.method == "GET") {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (request.body) {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body->data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body->size()));
  }

  curl_blob ca_blob{};
  if (insecure_) {
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!ca_pem_.empty()) {
    // Only this CA: not the system store as well.
    curl_easy_setopt(easy, CURLOPT_CAINFO, nullptr);
    curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
    ca_blob.data = const_cast<char*>(ca_pem_.data());
    ca_blob.len = ca_pem_.size();
    ca_blob.flags = CURL_BLOB_COPY;
    curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &ca_blob);
  }
  curl_blob cert_blob{};
  curl_blob key_blob{};
  if (!credentials.client_certificate_pem.empty()) {
    cert_blob.data = const_cast<char*>(credentials.client_certificate_pem.data());
    cert_blob.len = credentials.client_certificate_pem.size();
    cert_blob.flags = CURL_BLOB_COPY;
    key_blob.data = const_cast<char*>(credentials.client_key_pem.data());
    key_blob.len = credentials.client_key_pem.size();
    key_blob.flags = CURL_BLOB_COPY;
    curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &cert_blob);
    curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key_blob);
  }

  CURLcode result = CURLE_OK;
  bool cancelled = false;
  bool multi_failed = false;
  {
    curl_multi_add_handle(h->multi, easy);
    CURLM* multi = h->multi;
    auto wake = [multi] { curl_multi_wakeup(multi); };
    std::stop_callback<decltype(wake)> on_stop(stop, wake);
    int running = 1;
    while (true) {
      if (curl_multi_perform(multi, &running) != CURLM_OK) {
        multi_failed = true;
        break;
      }
      if (running == 0) break;
      if (stop.stop_requested()) {
        cancelled = true;
        break;
      }
      if (curl_multi_poll(multi, nullptr, 0, 1000, nullptr) != CURLM_OK) {
        multi_failed = true;
        break;
      }
    }
    if (!cancelled && !multi_failed) {
      int queued = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) result = msg->data.result;
      }
    }
    curl_multi_remove_handle(multi, easy);
  }
  curl_off_t pretransfer_us = 0;
  curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);
  curl_slist_free_all(connect_to);
  // The options point into this frame (URL, blobs, error buffer): forget them before the handle
  // goes back to the pool.
  curl_easy_reset(easy);
  Release(std::move(h));

  if (cancelled) return absl::CancelledError(fmt::format("{}: cancelled", what));
  if (multi_failed) return absl::InternalError(fmt::format("{}: libcurl multi failure", what));
  if (response.stopped_by_reader) return response;
  if (transfer.too_large) {
    return absl::ResourceExhaustedError(
        fmt::format("{}: the response is larger than {} bytes", what, options_.max_response_bytes));
  }
  if (result == CURLE_OK) return response;

  const std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(result);
  switch (result) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
      if (detail.find("name") != std::string::npos && detail.find("match") != std::string::npos) {
        return absl::FailedPreconditionError(fmt::format(
            "{}: TLS verification failed: the server's certificate does not name the host "
            "Eph connects to (set tls-server-name in the kubeconfig if the certificate uses "
            "another name) ({})",
            what, detail));
      }
      if (ca_pem_.empty()) {
        return absl::FailedPreconditionError(fmt::format(
            "{}: TLS verification failed: the server's certificate is not trusted by the "
            "system's certificate authorities and the kubeconfig names no certificate "
            "authority for this cluster ({})",
            what, detail));
      }
      return absl::FailedPreconditionError(fmt::format(
          "{}: TLS verification failed: the server's certificate is not signed by the "
          "configured certificate authority ({}); is it the right CA for this cluster? ({})",
          what, ca_origin_.empty() ? "the cluster's CA" : ca_origin_, detail));
    case CURLE_SSL_CERTPROBLEM:
      return absl::FailedPreconditionError(
          fmt::format("{}: the client certificate or key cannot be used: {}", what, detail));
    case CURLE_OPERATION_TIMEDOUT: {
      absl::Status st = absl::DeadlineExceededError(fmt::format("{}: timed out: {}", what, detail));
      return pretransfer_us == 0 ? NotSent(st) : st;
    }
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return NotSent(absl::UnavailableError(
          fmt::format("{}: cannot connect to the API server: {}", what, detail)));
    default: {
      absl::Status st = absl::UnavailableError(fmt::format("{}: {}", what, detail));
      return pretransfer_us == 0 && !response.streamed && response.status == 0 ? NotSent(st) : st;
    }
  }
}

}  // namespace eph::kube
