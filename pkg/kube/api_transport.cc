#include "pkg/kube/api_transport.h"

#include "fmt/format.h"

namespace eph::kube {

ApiTransport::ApiTransport(const KubeConfig& config, TransportOptions options)
    : server_(config.server),
      url_base_(config.server),
      ca_pem_(config.ca_pem),
      ca_origin_(config.ca_origin),
      insecure_(config.insecure_skip_tls_verify),
      proxy_url_(config.proxy_url),
      options_(std::move(options)),
      client_(http::HttpClientOptions{.max_idle_handles = options_.max_idle_handles}) {
  if (config.tls_server_name.empty()) return;
  // Verify the certificate against tls-server-name while connecting to the real host: ask for
  // the name in the URL and tell curl where that name really is.
  if (const std::optional<http::Origin> origin = http::OriginOf(server_)) {
    url_base_ = fmt::format("{}://{}:{}", origin->scheme, config.tls_server_name, origin->port);
    connect_to_ = fmt::format("{}:{}:{}:{}", config.tls_server_name, origin->port, origin->host,
                              origin->port);
  }
}

http::Request ApiTransport::Build(const HttpRequest& request,
                                  const Credentials& credentials) const {
  http::Request out{.method = request.method,
                    .url = url_base_ + request.path_and_query,
                    .headers = {"Accept: " + request.accept},
                    .body = request.body,
                    .timeout = request.timeout,
                    .max_response_bytes = options_.max_response_bytes,
                    .connect_timeout = options_.connect_timeout};
  if (request.body) out.headers.push_back("Content-Type: " + request.content_type);
  if (!credentials.bearer_token.empty()) {
    out.headers.push_back("Authorization: Bearer " + credentials.bearer_token);
  }
  out.tls = {.ca_pem = ca_pem_,
             .insecure_skip_verify = insecure_,
             .client_certificate_pem = credentials.client_certificate_pem,
             .client_key_pem = credentials.client_key_pem};
  out.connect_to = connect_to_;
  out.proxy = proxy_url_;
  out.user_agent = options_.user_agent;
  out.accept_encoding = !request.on_body;
  out.tcp_keepalive = true;
  out.what = fmt::format("{} {}", request.method, server_ + request.path_and_query);
  out.on_body = request.on_body;
  return out;
}

// TLS failures, with what to check in the kubeconfig.
absl::Status ApiTransport::ExplainTls(const absl::Status& status) const {
  switch (http::FailureOf(status)) {
    case http::TransportFailure::kTlsNameMismatch:
      return http::Prefixed(status,
                            "the server's certificate does not name the host Eph connects to "
                            "(set tls-server-name in the kubeconfig if the certificate uses "
                            "another name)");
    case http::TransportFailure::kTlsUntrusted:
      if (ca_pem_.empty()) {
        return http::Prefixed(status,
                              "the server's certificate is not trusted by the system's "
                              "certificate authorities and the kubeconfig names no certificate "
                              "authority for this cluster");
      }
      return http::Prefixed(
          status, fmt::format("the server's certificate is not signed by the configured "
                              "certificate authority ({}); is it the right CA for this cluster?",
                              ca_origin_.empty() ? "the cluster's CA" : ca_origin_));
    default:
      return status;
  }
}

absl::StatusOr<HttpResponse> ApiTransport::Perform(const HttpRequest& request,
                                                   const Credentials& credentials,
                                                   const std::stop_token& stop) {
  absl::StatusOr<HttpResponse> response = client_.Perform(Build(request, credentials), stop);
  if (!response.ok()) return ExplainTls(response.status());
  return response;
}

}  // namespace eph::kube
