/*
 * libevent_echo: a TCP echo server on libevent, written the way libevent's performance-minded
 * users write one (memcached's style: a persistent raw read event per connection, the
 * application's own read buffer, a direct send, the loop armed for writing only while an
 * unwritten tail waits), for brrr's side-by-side benchmark (bench/echo.sh). A benchmark is only
 * as honest as its strongest peer.
 *
 *   libevent_echo PORT   listens on 127.0.0.1:PORT (0: a free port the kernel picks) and prints
 *                        "libevent_echo: listening on 127.0.0.1:PORT (libevent VERSION, METHOD)"
 *
 * Why raw events and not bufferevents (the samples' evconnlistener + bufferevent echo, whose
 * read callback moves the input evbuffer to the output one): counted with strace -c -f at 64
 * connections ping-pong, that style makes about 5.1 system calls per message (bench/README.md,
 * "The peers"): evbuffer_read asks the kernel how much is readable (ioctl FIONREAD) before each
 * readv, and a bufferevent writes only from its write event, so every echo arms EV_WRITE
 * (epoll_ctl), waits a loop turn for it, writes (writev) and disarms it (epoll_ctl) again. This
 * one makes one recv and one send per message plus its share of epoll_wait, with no epoll_ctl
 * at all in the steady state (about 2.0).
 *
 * How:
 *   - One 64 KiB read buffer for the whole loop; each read is consumed before the callback
 *     returns.
 *   - send() first. Only what the kernel did not take is kept, in the connection's evbuffer
 *     (appended after anything already queued, so the echo stays in order), and only then is
 *     the write event armed; evbuffer_write drains it when the socket is writable.
 *   - Flow control with watermarks: at a high-water mark of 16 KiB queued the read event is
 *     removed, and it is added back once the queue is down to the low-water mark (0: drained).
 *     A client that never reads holds at most one read (64 KiB) plus the mark per connection.
 *   - TCP_NODELAY on every accepted connection.
 *   - EOF: the queued echo is sent first, then the write side is shut down and the connection
 *     closed; a read or write error (ECONNRESET, EPIPE) closes at once. Every connection is on a
 *     list, so SIGTERM or SIGINT frees them all, the listener and the base, and exits 0 (a leak
 *     checker sees nothing left).
 * No per-message allocation: an evbuffer allocates chains only for a tail, bounded by the marks.
 * Single-threaded: everything runs on the event_base's thread.
 *
 * ECHO_IDLE_THREADS=N (an experiment, not how it is meant to run) starts N threads that only
 * sleep, so that the process is multi-threaded as brrr-echo is (its loop, signal and stall
 * watchdog threads) and pays what that costs in the kernel while it echoes exactly as before:
 * a reference taken and dropped on the file at every system call on a descriptor (a
 * single-threaded process skips both), and the scheduler's bookkeeping for a process whose
 * threads share memory (bench/JOURNAL.md, ninth run).
 *
 * ECHO_BATCH_SENDS=1 (an experiment too) echoes in brrr's order instead of its own: every read
 * of a loop iteration first (the bytes packed one after another in the read buffer), then every
 * send, after event_base_loop(EVLOOP_ONCE) has run all the read callbacks. The system calls
 * are the same, one recv and one send per message; only their order changes, so that what it
 * costs to send to a socket long after reading from it, and not right after, shows on its own
 * (bench/JOURNAL.md, fifteenth run).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
  kReadBufferBytes = 64 * 1024,
  kHighWaterBytes = 16 * 1024,
  kLowWaterBytes = 0,
};

typedef struct conn {
  evutil_socket_t fd;
  struct event* readable;  /* EV_READ | EV_PERSIST; removed while paused or after EOF */
  struct event* writable;  /* EV_WRITE | EV_PERSIST; added only while `tail` holds bytes */
  struct evbuffer* tail;   /* the echo the kernel has not taken yet */
  int paused;              /* reading stopped at the high-water mark */
  const char* batched;     /* ECHO_BATCH_SENDS: this iteration's read, still to be echoed */
  size_t batched_len;
  size_t batched_at;       /* its place in `pending`, plus 1; 0 when none */
  int eof;                 /* the client has finished sending */
  struct conn* prev;
  struct conn* next;
} conn_t;

static char read_buffer[kReadBufferBytes];
static conn_t* conns; /* every open connection, for the shutdown */

/* ECHO_BATCH_SENDS: the connections read in this iteration, in order, and how much of
 * read_buffer their reads fill. */
static int batch_sends;
static conn_t** pending;
static size_t pending_count;
static size_t pending_capacity;
static size_t read_buffer_used;
static int stopped;

static void close_conn(conn_t* c) {
  if (c->batched_at) pending[c->batched_at - 1] = NULL;
  if (c->prev) c->prev->next = c->next; else conns = c->next;
  if (c->next) c->next->prev = c->prev;
  event_free(c->readable);
  event_free(c->writable);
  evbuffer_free(c->tail);
  evutil_closesocket(c->fd);
  free(c);
}

static int would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

/* The queue is empty: finish a connection at EOF, or resume reading. */
static void drained(conn_t* c) {
  if (c->eof) {
    shutdown(c->fd, SHUT_WR);
    close_conn(c);
    return;
  }
  if (c->paused) {
    c->paused = 0;
    event_add(c->readable, NULL);
  }
}

static void on_writable(evutil_socket_t fd, short what, void* arg) {
  (void)what;
  conn_t* c = arg;
  if (evbuffer_write(c->tail, fd) < 0 && !would_block()) {
    close_conn(c);
    return;
  }
  size_t left = evbuffer_get_length(c->tail);
  if (left == 0) event_del(c->writable);
  if (left <= kLowWaterBytes) drained(c);
}

/* The read found no data: the end of stream (`n` == 0) or an error. */
static void read_ended(conn_t* c, ssize_t n) {
  if (n < 0) {
    if (!would_block()) close_conn(c);
    return;
  }
  c->eof = 1;
  event_del(c->readable);
  if (evbuffer_get_length(c->tail) == 0) drained(c);
}

/* Sends the `n` bytes at `data` back, or keeps what the kernel does not take. Inlined into each
 * caller, so that the default path costs what it did before ECHO_BATCH_SENDS existed. */
static inline __attribute__((always_inline)) void echo(conn_t* c, const char* data, ssize_t n) {
  evutil_socket_t fd = c->fd;
  size_t queued = evbuffer_get_length(c->tail);
  ssize_t sent = 0;
  if (queued == 0) {
    sent = send(fd, data, (size_t)n, MSG_NOSIGNAL);
    if (sent == n) return;
    if (sent < 0) {
      if (!would_block()) {
        close_conn(c);
        return;
      }
      sent = 0;
    }
  }
  if (evbuffer_add(c->tail, data + sent, (size_t)(n - sent)) != 0) {
    close_conn(c);
    return;
  }
  if (queued == 0) event_add(c->writable, NULL);
  if (evbuffer_get_length(c->tail) >= kHighWaterBytes) {
    c->paused = 1;
    event_del(c->readable);
  }
}

/* ECHO_BATCH_SENDS: sends what this iteration's reads brought, in the order they came. */
static void flush_pending(void) {
  for (size_t i = 0; i < pending_count; i++) {
    conn_t* c = pending[i];
    if (c == NULL) continue; /* closed meanwhile */
    c->batched_at = 0;
    echo(c, c->batched, (ssize_t)c->batched_len);
  }
  pending_count = 0;
  read_buffer_used = 0;
}

/* ECHO_BATCH_SENDS: keeps the read of `n` bytes at `data` to echo after the iteration. */
static void batch(conn_t* c, const char* data, ssize_t n) {
  if (pending_count == pending_capacity) {
    size_t capacity = pending_capacity ? 2 * pending_capacity : 1024;
    conn_t** grown = realloc(pending, capacity * sizeof *grown);
    if (grown == NULL) {
      echo(c, data, n); /* no room to wait: echo at once */
      return;
    }
    pending = grown;
    pending_capacity = capacity;
  }
  c->batched = data;
  c->batched_len = (size_t)n;
  pending[pending_count++] = c;
  c->batched_at = pending_count;
  read_buffer_used += (size_t)n;
}

static void on_readable(evutil_socket_t fd, short what, void* arg) {
  (void)what;
  conn_t* c = arg;
  ssize_t n = recv(fd, read_buffer, sizeof read_buffer, 0);
  if (n <= 0) {
    read_ended(c, n);
    return;
  }
  echo(c, read_buffer, n);
}

/* ECHO_BATCH_SENDS's read callback: the read goes after the iteration's others in read_buffer,
 * and is echoed by flush_pending. */
static void on_readable_batched(evutil_socket_t fd, short what, void* arg) {
  (void)what;
  conn_t* c = arg;
  if (read_buffer_used == sizeof read_buffer) flush_pending(); /* full: send first */
  char* into = read_buffer + read_buffer_used;
  ssize_t n = recv(fd, into, sizeof read_buffer - read_buffer_used, 0);
  if (n <= 0) {
    read_ended(c, n);
    return;
  }
  batch(c, into, n);
}

static void on_accept(struct evconnlistener* listener, evutil_socket_t fd, struct sockaddr* address, int socklen,
                      void* arg) {
  (void)address;
  (void)socklen;
  (void)arg;
  struct event_base* base = evconnlistener_get_base(listener);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  conn_t* c = calloc(1, sizeof *c);
  if (c == NULL) {
    evutil_closesocket(fd);
    return;
  }
  c->fd = fd;
  c->readable = event_new(base, fd, EV_READ | EV_PERSIST, batch_sends ? on_readable_batched : on_readable, c);
  c->writable = event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
  c->tail = evbuffer_new();
  c->next = conns;
  if (conns) conns->prev = c;
  conns = c;
  if (c->readable == NULL || c->writable == NULL || c->tail == NULL || event_add(c->readable, NULL) != 0) {
    close_conn(c);
  }
}

static void on_accept_error(struct evconnlistener* listener, void* arg) {
  (void)listener;
  (void)arg;
  int err = EVUTIL_SOCKET_ERROR();
  fprintf(stderr, "libevent_echo: accept failed: %s; still listening\n", evutil_socket_error_to_string(err));
}

static void on_signal(evutil_socket_t sig, short what, void* arg) {
  (void)sig;
  (void)what;
  stopped = 1;
  event_base_loopbreak(arg);
}

static void* sleep_forever(void* arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

/* ECHO_IDLE_THREADS (see the top): 0 when unset; -1 when not a count from 0 to 64. */
static int start_idle_threads(void) {
  const char* value = getenv("ECHO_IDLE_THREADS");
  if (value == NULL || *value == '\0') return 0;
  char* end = NULL;
  long n = strtol(value, &end, 10);
  if (*end != '\0' || n < 0 || n > 64) return -1;
  for (long i = 0; i < n; i++) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, sleep_forever, NULL) != 0) return -1;
    pthread_detach(thread);
  }
  return (int)n;
}

int main(int argc, char** argv) {
  int port = argc > 1 ? atoi(argv[1]) : 5000;
  int idle_threads = start_idle_threads();
  if (idle_threads < 0) {
    fprintf(stderr, "libevent_echo: ECHO_IDLE_THREADS takes a count from 0 to 64 (threads that only sleep)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* evbuffer_write uses writev, which has no MSG_NOSIGNAL */
  struct event_base* base = event_base_new();
  if (!base) {
    fprintf(stderr, "libevent_echo: event_base_new failed\n");
    return 3;
  }
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(0x7f000001);
  sin.sin_port = htons((unsigned short)port);
  struct evconnlistener* listener = evconnlistener_new_bind(
      base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096, (struct sockaddr*)&sin, sizeof sin);
  if (!listener) {
    fprintf(stderr, "libevent_echo: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
    return 3;
  }
  evconnlistener_set_error_cb(listener, on_accept_error);
  struct sockaddr_in bound;
  socklen_t len = sizeof bound;
  getsockname(evconnlistener_get_fd(listener), (struct sockaddr*)&bound, &len);
  struct event* term = evsignal_new(base, SIGTERM, on_signal, base);
  struct event* intr = evsignal_new(base, SIGINT, on_signal, base);
  event_add(term, NULL);
  event_add(intr, NULL);

  const char* batched = getenv("ECHO_BATCH_SENDS");
  batch_sends = batched != NULL && *batched != '\0' && strcmp(batched, "0") != 0;
  printf("libevent_echo: listening on 127.0.0.1:%d (libevent %s, %s%s%s)\n", ntohs(bound.sin_port),
         event_get_version(), event_base_get_method(base), idle_threads > 0 ? ", idle threads" : "",
         batch_sends ? ", batched sends" : "");
  fflush(stdout);
  if (batch_sends) {
    while (!stopped && event_base_loop(base, EVLOOP_ONCE) == 0) flush_pending();
  } else {
    event_base_dispatch(base);
  }
  free(pending);

  while (conns) close_conn(conns);
  event_free(term);
  event_free(intr);
  evconnlistener_free(listener);
  event_base_free(base);
  libevent_global_shutdown();
  return 0;
}
