// floor: the least an echo round trip over loopback TCP can cost on this machine.
//
// One process, one thread, one connection: the whole exchange (the client sends a message, the
// server side receives it and sends it back, the client receives it) runs in a tight C loop,
// with no event loop, no readiness call and no wake-up, so what it costs is the kernel's TCP
// path and four system calls. Pin it to one core (bench/profile.sh runs it under taskset) and
// compare each server's CPU microseconds per message with this figure: a server does half of
// this exchange (a receive and a send) plus whatever its loop adds, and the load generator does
// the other half on another core.
//
//   taskset -c 0 floor [--size=64] [--batch=1] [--seconds=2] [--count=N]
//
// With --batch=N each exchange carries N messages in one send, as a pipelining client writes
// its window (brrr-bench --depth), so a pipelined server has a floor to be held against too.
//
// The sockets are non-blocking, and each step moves what it can: at 64 B every call moves the
// whole exchange, so it takes exactly four calls (the output counts them per message,
// and counts the calls that found nothing, which should stay 0), while a message larger than
// the socket buffers still cannot deadlock the single thread. Every echoed byte is checked.
//
// Prints one human line and one JSON line: messages (batch per exchange), seconds, messages/s, CPU microseconds per
// message (user + system, from getrusage), the user and system parts, and system calls per
// message. Exit codes: 0 done, 1 a system call failed or a byte came back wrong, 2 bad options.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kMaxSize = 1 << 20 };

static void die(const char* what) {
  fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(const struct timeval* t) { return (double)t->tv_sec + (double)t->tv_usec / 1e6; }

// Moves up to `want` bytes with one call; returns what moved (0: nothing now). Counts the call.
static size_t step(int fd, char* data, size_t want, int sending, uint64_t* calls, uint64_t* empty) {
  ++*calls;
  ssize_t n = sending ? send(fd, data, want, MSG_NOSIGNAL) : recv(fd, data, want, 0);
  if (n > 0) return (size_t)n;
  if (n == 0) {
    fprintf(stderr, "floor: the connection closed\n");
    exit(1);
  }
  if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) die(sending ? "send" : "recv");
  ++*empty;
  return 0;
}

static int parse(const char* arg, const char* name, double* value) {
  size_t len = strlen(name);
  if (strncmp(arg, name, len) != 0 || arg[len] != '=') return 0;
  char* end = NULL;
  *value = strtod(arg + len + 1, &end);
  if (end == arg + len + 1 || *end != '\0' || *value < 0) {
    fprintf(stderr, "floor: %s takes a non-negative number, not '%s'\n", name, arg + len + 1);
    exit(2);
  }
  return 1;
}

int main(int argc, char** argv) {
  double size_arg = 64, batch_arg = 1, seconds = 2, count_arg = 0;
  for (int i = 1; i < argc; ++i) {
    if (parse(argv[i], "--size", &size_arg) || parse(argv[i], "--batch", &batch_arg) ||
        parse(argv[i], "--seconds", &seconds) ||
        parse(argv[i], "--count", &count_arg)) {
      continue;
    }
    fprintf(stderr,
            "Usage: floor [--size=64] [--batch=1] [--seconds=2] [--count=N]\n"
            "Echoes --size byte messages, --batch to an exchange, over one loopback TCP connection,\n"
            "both ends in one thread, for --seconds (or until --count messages are done; 0: no count);\n"
            "pin it with taskset.\n");
    return strcmp(argv[i], "--help") == 0 ? 0 : 2;
  }
  size_t size = (size_t)size_arg;
  size_t batch = (size_t)batch_arg;
  if (size < 1 || batch < 1 || size * batch > kMaxSize || seconds <= 0 || seconds > 3600) {
    fprintf(stderr,
            "floor: --size times --batch must be from 1 to %d bytes, and --seconds from above 0 to 3600\n",
            kMaxSize);
    return 2;
  }
  size_t exchange = size * batch;  // bytes each way per exchange
  uint64_t count_limit = (uint64_t)count_arg;

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t address_size = sizeof(address);
  if (bind(listener, (struct sockaddr*)&address, sizeof(address)) != 0) die("bind 127.0.0.1:0");
  if (listen(listener, 1) != 0) die("listen");
  if (getsockname(listener, (struct sockaddr*)&address, &address_size) != 0) die("getsockname");
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client < 0) die("socket");
  if (connect(client, (struct sockaddr*)&address, sizeof(address)) != 0) die("connect");
  int server = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (server < 0) die("accept");
  int one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (fcntl(client, F_SETFL, O_NONBLOCK) != 0) die("fcntl O_NONBLOCK");

  char* message = malloc(exchange);
  char* at_server = malloc(exchange);
  char* echoed = malloc(exchange);
  if (message == NULL || at_server == NULL || echoed == NULL) die("malloc");
  for (size_t i = 0; i < exchange; ++i) message[i] = (char)(i * 131 + 7);

  uint64_t messages = 0, exchanges = 0, calls = 0, empty = 0;
  struct rusage before, after;
  getrusage(RUSAGE_SELF, &before);
  double start = now_s(), end = start + seconds, finished = start;
  for (;;) {
    // The four halves in order; a step that moved nothing is retried after the others.
    size_t sent = 0, taken = 0, returned = 0, got = 0;
    while (got < exchange) {
      if (sent < exchange) sent += step(client, message + sent, exchange - sent, 1, &calls, &empty);
      if (taken < sent) taken += step(server, at_server + taken, sent - taken, 0, &calls, &empty);
      if (returned < taken) returned += step(server, at_server + returned, taken - returned, 1, &calls, &empty);
      if (got < returned) got += step(client, echoed + got, returned - got, 0, &calls, &empty);
    }
    if (memcmp(message, echoed, exchange) != 0) {
      fprintf(stderr, "floor: the exchange after message %llu came back different\n", (unsigned long long)messages);
      return 1;
    }
    messages += batch;
    if (++exchanges % 256 == 0 || (count_limit > 0 && messages >= count_limit)) {
      finished = now_s();
      if (finished >= end || (count_limit > 0 && messages >= count_limit)) break;
    }
  }
  getrusage(RUSAGE_SELF, &after);
  double elapsed = finished - start;
  double user_us = (cpu_s(&after.ru_utime) - cpu_s(&before.ru_utime)) * 1e6;
  double sys_us = (cpu_s(&after.ru_stime) - cpu_s(&before.ru_stime)) * 1e6;
  double per = (double)messages;
  printf("floor: %llu messages of %zu B, %zu an exchange, in %.2f s: %.0f msg/s, %.2f CPU us/msg (user %.2f, system %.2f), "
         "%.2f system calls/msg (%llu found nothing)\n",
         (unsigned long long)messages, size, batch, elapsed, per / elapsed, (user_us + sys_us) / per, user_us / per,
         sys_us / per, (double)calls / per, (unsigned long long)empty);
  printf("{\"kind\":\"floor\",\"size\":%zu,\"batch\":%zu,\"messages\":%llu,\"seconds\":%.3f,\"messages_per_second\":%.1f,"
         "\"cpu_us_per_message\":%.3f,\"user_us_per_message\":%.3f,\"system_us_per_message\":%.3f,"
         "\"syscalls_per_message\":%.3f,\"empty_calls\":%llu}\n",
         size, batch, (unsigned long long)messages, elapsed, per / elapsed, (user_us + sys_us) / per, user_us / per,
         sys_us / per, (double)calls / per, (unsigned long long)empty);
  close(client);
  close(server);
  close(listener);
  free(message);
  free(at_server);
  free(echoed);
  return 0;
}
