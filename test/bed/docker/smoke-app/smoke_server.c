// A tiny HTTP server for the Docker test-bed smoke test. Built with `gcc -static` so that it can
// run in an image built FROM scratch (no libc, no shell).
//
// Listens on 0.0.0.0:$SMOKE_PORT (default 8080) and answers every request with
// "eph-smoke-ok <token>\n", where <token> is $SMOKE_TOKEN: the smoke script passes a random
// token and checks it comes back, which proves the page came from the container it started.
// One connection at a time. Exits on SIGTERM/SIGINT through a handler: as PID 1 of a container
// it would otherwise ignore them and `docker stop` would wait for its SIGKILL timeout.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

int main(void) {
  signal(SIGTERM, ExitOnSignal);
  signal(SIGINT, ExitOnSignal);
  const char* token = getenv("SMOKE_TOKEN");
  if (token == NULL) token = "";
  const char* port_env = getenv("SMOKE_PORT");
  int port = port_env != NULL ? atoi(port_env) : 8080;

  char body[512];
  int body_len = snprintf(body, sizeof body, "eph-smoke-ok %s\n", token);
  if (body_len < 0 || (size_t)body_len >= sizeof body) return 2;
  char response[1024];
  int response_len = snprintf(response, sizeof response,
                              "HTTP/1.1 200 OK\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: %d\r\n"
                              "Connection: close\r\n"
                              "\r\n"
                              "%s",
                              body_len, body);
  if (response_len < 0 || (size_t)response_len >= sizeof response) return 2;

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) {
    perror("socket");
    return 1;
  }
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons((unsigned short)port);
  if (bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(listener, 16) != 0) {
    perror("bind/listen");
    return 1;
  }
  fprintf(stderr, "smoke server listening on :%d\n", port);

  for (;;) {
    int conn = accept(listener, NULL, NULL);
    if (conn < 0) continue;
    // Read (and ignore) the request head so the client sees a clean exchange.
    char request[4096];
    (void)read(conn, request, sizeof request);
    WriteAll(conn, response, (size_t)response_len);
    shutdown(conn, SHUT_WR);
    close(conn);
  }
}
