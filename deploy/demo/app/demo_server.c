// The demo's sample app: a tiny static HTTP server for an image built FROM scratch (no libc, no
// shell), so the demo runs without pulling anything from a registry.
//
//   demo_server            serve on 0.0.0.0:$PORT (default 8080), a process per connection
//   demo_server --check    exit 0 if the server on 127.0.0.1:$PORT answers /healthz (the
//                          compose healthcheck: the image has no curl or shell)
//
// GET /healthz answers "ok"; every other path a small HTML page naming $APP_VERSION (the image
// tag, so a push's new tag shows) and the request's Host header as the gateway forwarded it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void WriteAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n <= 0) return;
    data += n;
    len -= (size_t)n;
  }
}

static void ExitOnSignal(int signal_number) { _exit(128 + signal_number); }

static int Port(void) {
  const char* port_env = getenv("PORT");
  int port = port_env != NULL ? atoi(port_env) : 8080;
  return port > 0 && port < 65536 ? port : 8080;
}

// Copies the value of header `name` (case-insensitive, "Name: value\r\n") into out.
static void Header(const char* request, const char* name, char* out, size_t out_size) {
  out[0] = '\0';
  size_t name_len = strlen(name);
  for (const char* line = strstr(request, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
    const char* start = line + 2;
    if (strncasecmp(start, name, name_len) == 0 && start[name_len] == ':') {
      const char* value = start + name_len + 1;
      while (*value == ' ') ++value;
      size_t n = strcspn(value, "\r\n");
      if (n >= out_size) n = out_size - 1;
      memcpy(out, value, n);
      out[n] = '\0';
      return;
    }
  }
}

static void Serve(int fd) {
  char request[8192];
  request[0] = '\0';
  size_t used = 0;
  // Keep-alive: answer requests on this connection until the client closes it.
  for (;;) {
    char* end = NULL;
    while ((end = strstr(request, "\r\n\r\n")) == NULL || used == 0) {
      if (used + 1 >= sizeof request) return;
      ssize_t n = read(fd, request + used, sizeof request - 1 - used);
      if (n <= 0) return;
      used += (size_t)n;
      request[used] = '\0';
    }
    char path[256] = "/";
    sscanf(request, "%*s %255s", path);
    char host[256], forwarded_for[256];
    Header(request, "Host", host, sizeof host);
    Header(request, "X-Forwarded-For", forwarded_for, sizeof forwarded_for);
    const char* version = getenv("APP_VERSION");
    if (version == NULL) version = "unknown";
    char body[2048];
    int body_len;
    if (strcmp(path, "/healthz") == 0) {
      body_len = snprintf(body, sizeof body, "ok\n");
    } else {
      body_len = snprintf(body, sizeof body,
                          "<!doctype html><html><head><title>Eph demo</title></head><body>"
                          "<h1>Hello from an Eph preview</h1>"
                          "<p>version <b id=\"version\">%s</b></p>"
                          "<p>served for host <code>%s</code>, forwarded for <code>%s</code></p>"
                          "</body></html>\n",
                          version, host, forwarded_for);
    }
    char head[256];
    int head_len = snprintf(head, sizeof head,
                            "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
                            strcmp(path, "/healthz") == 0 ? "text/plain" : "text/html",
                            body_len);
    WriteAll(fd, head, (size_t)head_len);
    WriteAll(fd, body, (size_t)body_len);
    // Drop the request just answered (no request bodies in this app).
    size_t consumed = (size_t)(end + 4 - request);
    memmove(request, request + consumed, used - consumed + 1);
    used -= consumed;
  }
}

static int Check(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)Port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) return 1;
  const char* req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  WriteAll(fd, req, strlen(req));
  char answer[64] = {0};
  ssize_t n = read(fd, answer, sizeof answer - 1);
  close(fd);
  return n > 12 && strncmp(answer, "HTTP/1.1 200", 12) == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "--check") == 0) return Check();
  signal(SIGTERM, ExitOnSignal);
  signal(SIGINT, ExitOnSignal);
  signal(SIGCHLD, SIG_IGN);  // children are reaped by the kernel
  int server = socket(AF_INET, SOCK_STREAM, 0);
  int yes = 1;
  setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)Port());
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (server < 0 || bind(server, (struct sockaddr*)&addr, sizeof addr) != 0 ||
      listen(server, 64) != 0) {
    perror("listen");
    return 1;
  }
  for (;;) {
    int fd = accept(server, NULL, NULL);
    if (fd < 0) continue;
    pid_t pid = fork();
    if (pid == 0) {
      close(server);
      Serve(fd);
      _exit(0);
    }
    close(fd);
  }
}
