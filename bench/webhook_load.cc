// webhook_load: sends signed GitHub pull_request deliveries to ephd at a fixed concurrency and
// prints what was acknowledged, how fast, and the acknowledgement latency percentiles.
//
//   webhook_load --url http://127.0.0.1:8080/webhooks/github --secret S --count 5000
//                --concurrency 16 [--body-file payload.json] [--id-prefix run1]
//
// Each delivery has a unique X-GitHub-Delivery and its own pull request number, so each one is a
// new delivery row plus a new queue key: the worst case for the intake. Bounded in count; every
// connection goes to the given (loopback) URL only.
#include <curl/curl.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "pkg/webhook/signature.h"

namespace {

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

std::string DefaultBody() {
  return R"({"action":"labeled","number":0,"pull_request":{"number":0,"state":"open"},)"
         R"("label":{"name":"preview"},"repository":{"full_name":"bench/app"}})";
}

// Replaces the pull request number in the body so every delivery concerns a different PR.
std::string WithNumber(const std::string& body, long n) {
  std::string out = body;
  const std::string needle = "\"number\":0";
  const std::string repl = "\"number\":" + std::to_string(n);
  size_t pos = 0;
  while ((pos = out.find(needle, pos)) != std::string::npos) {
    out.replace(pos, needle.size(), repl);
    pos += repl.size();
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"webhook_load"};
  std::string url, secret, body_file, prefix = "load";
  long count = 1000;
  int concurrency = 8;
  app.add_option("--url", url)->required();
  app.add_option("--secret", secret)->required();
  app.add_option("--count", count)->check(CLI::Range(1L, 1000000L));
  app.add_option("--concurrency", concurrency)->check(CLI::Range(1, 256));
  app.add_option("--body-file", body_file);
  app.add_option("--id-prefix", prefix);
  CLI11_PARSE(app, argc, argv);

  std::string body = DefaultBody();
  if (!body_file.empty()) {
    std::ifstream in(body_file);
    std::stringstream ss;
    ss << in.rdbuf();
    body = ss.str();
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::atomic<long> next{0}, acked{0}, failed{0};
  std::mutex mu;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(static_cast<size_t>(count));
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      CURL* curl = curl_easy_init();
      std::vector<double> mine;
      while (true) {
        const long i = next.fetch_add(1);
        if (i >= count) break;
        const std::string payload = WithNumber(body, i + 1);
        curl_slist* headers = nullptr;
        headers = curl_slist_append(headers, "Content-Type: application/json");
        headers = curl_slist_append(headers, "X-GitHub-Event: pull_request");
        const std::string delivery = "X-GitHub-Delivery: " + prefix + "-" + std::to_string(i);
        const std::string sig =
            "X-Hub-Signature-256: " + eph::webhook::SignGitHub(secret, payload);
        headers = curl_slist_append(headers, delivery.c_str());
        headers = curl_slist_append(headers, sig.c_str());
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.data());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(payload.size()));
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
        const auto t0 = std::chrono::steady_clock::now();
        const CURLcode rc = curl_easy_perform(curl);
        const auto t1 = std::chrono::steady_clock::now();
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(headers);
        if (rc == CURLE_OK && status >= 200 && status < 300) {
          ++acked;
          mine.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        } else {
          ++failed;
        }
      }
      curl_easy_cleanup(curl);
      std::lock_guard<std::mutex> lock(mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    if (latencies_ms.empty()) return 0.0;
    const size_t i = std::min(latencies_ms.size() - 1,
                              static_cast<size_t>(p / 100.0 * static_cast<double>(latencies_ms.size())));
    return latencies_ms[i];
  };
  std::printf("sent=%ld acked=%ld failed=%ld seconds=%.3f rate=%.1f/s p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
              count, acked.load(), failed.load(), seconds,
              static_cast<double>(acked.load()) / seconds, pct(50), pct(99),
              latencies_ms.empty() ? 0.0 : latencies_ms.back());
  curl_global_cleanup();
  return failed.load() == 0 ? 0 : 1;
}
