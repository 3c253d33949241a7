/*
 * libuv_echo: a TCP echo server on libuv, driven the way Node.js drives libuv (its net.Socket
 * over StreamBase and LibuvStreamWrap), for brrr's side-by-side benchmark (bench/echo.sh).
 * A benchmark is only as honest as its strongest peer, so this is libuv at its best, not the
 * docs' teaching example (which mallocs a buffer per read and uv_writes every message: an
 * epoll_ctl per message and a brk every few).
 *
 *   libuv_echo PORT      listens on 127.0.0.1:PORT (0: a free port the kernel picks) and
 *                        prints "libuv_echo: listening on 127.0.0.1:PORT (libuv VERSION)"
 *
 * What Node does, and this does too:
 *   - One read buffer for the whole loop: the alloc callback hands out the same 64 KiB every
 *     time (Node reads into one 64 KiB slab per environment). Each read is consumed before the
 *     callback returns, so nothing else ever holds it.
 *   - uv_try_write first (StreamBase::WriteBuffer's DoTryWrite): at ping-pong the whole echo
 *     goes out in that one send, with no write request and no EPOLLOUT to arm.
 *   - uv_write only for the unwritten tail, copied into a heap block owned by its write request
 *     until the write callback (libuv keeps queued writes in order; uv_try_write refuses while
 *     any are queued, so the echo stays byte-exact).
 *   - Flow control as Node's stream.pipe(): past a high-water mark of queued tail bytes (Node's
 *     default writableHighWaterMark, 16 KiB) reading stops (uv_read_stop) and resumes once the
 *     queue has drained ('drain'). A client that never reads holds at most one read (64 KiB)
 *     plus the mark per connection.
 *   - TCP_NODELAY on every accepted connection (Node sets it by default since v18).
 *   - EOF: shut down the write side once the queued echo has gone (Node's allowHalfOpen=false
 *     end()), then close; a read error (ECONNRESET and the like) or a failed write closes at
 *     once, and uv_close cancels what is queued (each cancelled callback frees its tail).
 *   - SIGTERM or SIGINT closes every handle, runs the loop until their callbacks are done and
 *     exits 0, so a leak checker sees everything freed.
 * Single-threaded: everything runs on the default loop's thread.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum {
  kReadBufferBytes = 64 * 1024,
  kHighWaterBytes = 16 * 1024,
};

/* One accepted connection; `tcp` comes first so a handle pointer is a conn pointer. */
typedef struct {
  uv_tcp_t tcp;
  uv_shutdown_t shutdown;
  size_t queued;   /* tail bytes handed to uv_write whose callbacks have not run */
  int paused;      /* reading stopped at the high-water mark */
  int closing;     /* uv_close called, or a shutdown in flight */
} conn_t;

/* An unwritten tail: the request and its copy of the bytes in one block. */
typedef struct {
  uv_write_t req;
  conn_t* conn;
  size_t len;
  char data[];
} tail_t;

static uv_loop_t* loop;
static char read_buffer[kReadBufferBytes];

static void alloc_cb(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buf) {
  (void)handle;
  (void)suggested_size;
  *buf = uv_buf_init(read_buffer, sizeof read_buffer);
}

static void free_conn(uv_handle_t* handle) { free(handle); }

static void close_conn(conn_t* c) {
  if (uv_is_closing((uv_handle_t*)&c->tcp)) return;
  c->closing = 1;
  uv_close((uv_handle_t*)&c->tcp, free_conn);
}

static void read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

static void after_write(uv_write_t* req, int status) {
  tail_t* t = (tail_t*)req;
  conn_t* c = t->conn;
  c->queued -= t->len;
  free(t);
  if (status == UV_ECANCELED) return; /* uv_close flushed the queue; the close callback frees c */
  if (status < 0) {
    close_conn(c);
    return;
  }
  if (c->paused && c->queued == 0 && !c->closing) {
    c->paused = 0;
    if (uv_read_start((uv_stream_t*)&c->tcp, alloc_cb, read_cb) != 0) close_conn(c);
  }
}

static void after_shutdown(uv_shutdown_t* req, int status) {
  (void)status;
  close_conn((conn_t*)req->data);
}

/* Echoes n bytes from the loop's read buffer: a direct send first, the rest queued. */
static void echo(conn_t* c, const char* bytes, size_t n) {
  uv_buf_t direct = uv_buf_init((char*)bytes, (unsigned int)n);
  int sent = uv_try_write((uv_stream_t*)&c->tcp, &direct, 1);
  if (sent == UV_EAGAIN || sent == UV_ENOSYS) {
    sent = 0;
  } else if (sent < 0) {
    close_conn(c);
    return;
  }
  if ((size_t)sent == n) return;
  size_t rest = n - (size_t)sent;
  tail_t* t = malloc(sizeof *t + rest);
  if (t == NULL) {
    close_conn(c);
    return;
  }
  t->conn = c;
  t->len = rest;
  memcpy(t->data, bytes + sent, rest);
  uv_buf_t tail = uv_buf_init(t->data, (unsigned int)rest);
  if (uv_write(&t->req, (uv_stream_t*)&c->tcp, &tail, 1, after_write) != 0) {
    free(t);
    close_conn(c);
    return;
  }
  c->queued += rest;
  if (c->queued >= kHighWaterBytes && !c->paused) {
    c->paused = 1;
    uv_read_stop((uv_stream_t*)&c->tcp);
  }
}

static void read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  conn_t* c = (conn_t*)stream;
  if (nread > 0) {
    echo(c, buf->base, (size_t)nread);
    return;
  }
  if (nread == 0) return; /* EAGAIN: nothing this time */
  if (nread == UV_EOF && !c->closing) {
    /* libuv stops reading at EOF; the shutdown waits for the queued echo, then closes. */
    c->closing = 1;
    c->shutdown.data = c;
    if (uv_shutdown(&c->shutdown, stream, after_shutdown) == 0) return;
  }
  close_conn(c);
}

static void on_connection(uv_stream_t* server, int status) {
  if (status < 0) {
    fprintf(stderr, "libuv_echo: accept failed: %s; still listening\n", uv_strerror(status));
    return;
  }
  conn_t* c = calloc(1, sizeof *c);
  if (c == NULL) return; /* the connection stays in the backlog; libuv retries on the next wake-up */
  uv_tcp_init(loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t*)&c->tcp) != 0 || uv_tcp_nodelay(&c->tcp, 1) != 0 ||
      uv_read_start((uv_stream_t*)&c->tcp, alloc_cb, read_cb) != 0) {
    close_conn(c);
  }
}

static void close_any(uv_handle_t* handle, void* arg) {
  (void)arg;
  if (uv_is_closing(handle)) return;
  if (handle->type == UV_TCP && handle->data == NULL) {
    close_conn((conn_t*)handle); /* a connection: its close callback frees it */
  } else {
    uv_close(handle, NULL); /* the listener and the signal watchers live on main's stack */
  }
}

static void on_signal(uv_signal_t* handle, int signum) {
  (void)signum;
  uv_walk(handle->loop, close_any, NULL);
}

int main(int argc, char** argv) {
  int port = argc > 1 ? atoi(argv[1]) : 5000;
  loop = uv_default_loop();
  /* A client that resets a connection with a send in flight must not end the server. */
  signal(SIGPIPE, SIG_IGN);

  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  server.data = &server; /* marks the listener: close_any tells it from a connection by this */
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  int r = uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0);
  if (r == 0) r = uv_listen((uv_stream_t*)&server, 4096, on_connection);
  if (r != 0) {
    fprintf(stderr, "libuv_echo: cannot listen on 127.0.0.1:%d: %s\n", port, uv_strerror(r));
    return 3;
  }
  struct sockaddr_in bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&server, (struct sockaddr*)&bound, &len);

  uv_signal_t term, intr;
  uv_signal_init(loop, &term);
  uv_signal_init(loop, &intr);
  uv_signal_start(&term, on_signal, SIGTERM);
  uv_signal_start(&intr, on_signal, SIGINT);

  printf("libuv_echo: listening on 127.0.0.1:%d (libuv %s)\n", ntohs(bound.sin_port), uv_version_string());
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  /* Every handle is closed and every callback has run: nothing is left to free. */
  r = uv_loop_close(loop);
  if (r != 0) {
    fprintf(stderr, "libuv_echo: the loop still has handles at exit: %s\n", uv_strerror(r));
    return 1;
  }
  return 0;
}
