// The sample app of the Docker provider's tests, built with `gcc -static` into images FROM
// scratch (no shell, no libc), tagged eph-sample:v1 / :v2 with a different page each.
//
//   sample_server            serves "$PAGE\n" on 0.0.0.0:$PORT (default 8080); logs
//                            "listening on :PORT" and one "served N" line per request to stdout
//   sample_server probe PORT healthcheck: exit 0 if 127.0.0.1:PORT answers HTTP 200, else 1
//   sample_server fail       writes "sample failing on purpose" to stderr and exits 3
//   sample_server exit N     writes "exiting with N" and exits N (a one-shot task)
//
// Exits on SIGTERM through a handler: as PID 1 it would otherwise ignore the signal.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void ExitOnSignal(int signal_number) { _exit(128 + signal_number); }

static int Probe(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 1;
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((unsigned short)port);
  if (connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
    perror("probe connect");
    return 1;
  }
  const char request[] = "GET / HTTP/1.0\r\n\r\n";
  if (write(fd, request, sizeof request - 1) != (ssize_t)(sizeof request - 1)) return 1;
  char buf[64] = {0};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n > 12 && strncmp(buf, "HTTP/1.1 200", 12) == 0) return 0;
  fprintf(stderr, "probe: unexpected answer\n");
  return 1;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGTERM, ExitOnSignal);
  signal(SIGINT, ExitOnSignal);
  if (argc >= 3 && strcmp(argv[1], "probe") == 0) return Probe(atoi(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "exit") == 0) {
    printf("exiting with %d\n", atoi(argv[2]));
    return atoi(argv[2]);
  }
  if (argc >= 2 && strcmp(argv[1], "fail") == 0) {
    fprintf(stderr, "sample failing on purpose\n");
    return 3;
  }
  const char* page = getenv("PAGE");
  if (page == NULL) page = "eph-sample";
  const char* port_env = getenv("PORT");
  int port = port_env != NULL ? atoi(port_env) : 8080;

  char response[1024];
  int body_len = (int)strlen(page) + 1;
  int response_len = snprintf(response, sizeof response,
                              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                              "Content-Length: %d\r\nConnection: close\r\n\r\n%s\n",
                              body_len, page);
  if (response_len < 0 || (size_t)response_len >= sizeof response) return 2;

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons((unsigned short)port);
  if (listener < 0 || bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 ||
      listen(listener, 16) != 0) {
    perror("bind/listen");
    return 1;
  }
  printf("listening on :%d\n", port);
  long served = 0;
  for (;;) {
    int conn = accept(listener, NULL, NULL);
    if (conn < 0) continue;
    char request[4096];
    (void)read(conn, request, sizeof request);
    const char* p = response;
    size_t left = (size_t)response_len;
    while (left > 0) {
      ssize_t n = write(conn, p, left);
      if (n <= 0) break;
      p += n;
      left -= (size_t)n;
    }
    shutdown(conn, SHUT_WR);
    close(conn);
    printf("served %ld\n", ++served);
  }
}
