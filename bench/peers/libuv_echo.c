/*
 * libuv_echo: a TCP echo server on libuv, the way libuv's documentation writes one
 * (docs.libuv.org, "Networking": uv_tcp_bind, uv_listen, uv_read_start, uv_write), for
 * brrr's side-by-side benchmark (bench/echo.sh).
 *
 *   libuv_echo PORT      listens on 127.0.0.1:PORT, prints "listening on 127.0.0.1:PORT"
 *
 * Each read buffer is handed to uv_write and freed in the write callback, as in the docs'
 * echo example; TCP_NODELAY is set on accepted connections, as brrr-echo does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} write_req_t;

static uv_loop_t* loop;

static void alloc_buffer(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buf) {
  (void)handle;
  buf->base = malloc(suggested_size);
  buf->len = suggested_size;
}

static void on_close(uv_handle_t* handle) { free(handle); }

static void after_write(uv_write_t* req, int status) {
  write_req_t* wr = (write_req_t*)req;
  if (status != 0) fprintf(stderr, "write error: %s\n", uv_strerror(status));
  free(wr->buf.base);
  free(wr);
}

static void echo_read(uv_stream_t* client, ssize_t nread, const uv_buf_t* buf) {
  if (nread > 0) {
    write_req_t* req = malloc(sizeof *req);
    req->buf = uv_buf_init(buf->base, (unsigned int)nread);
    uv_write(&req->req, client, &req->buf, 1, after_write);
    return;
  }
  if (nread < 0) uv_close((uv_handle_t*)client, on_close);  /* UV_EOF or an error */
  free(buf->base);
}

static void on_new_connection(uv_stream_t* server, int status) {
  if (status < 0) {
    fprintf(stderr, "new connection error: %s\n", uv_strerror(status));
    return;
  }
  uv_tcp_t* client = malloc(sizeof *client);
  uv_tcp_init(loop, client);
  if (uv_accept(server, (uv_stream_t*)client) == 0) {
    uv_tcp_nodelay(client, 1);
    uv_read_start((uv_stream_t*)client, alloc_buffer, echo_read);
  } else {
    uv_close((uv_handle_t*)client, on_close);
  }
}

int main(int argc, char** argv) {
  int port = argc > 1 ? atoi(argv[1]) : 5000;
  loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  uv_tcp_bind(&server, (const struct sockaddr*)&addr, 0);
  int r = uv_listen((uv_stream_t*)&server, 4096, on_new_connection);
  if (r) {
    fprintf(stderr, "listen error: %s\n", uv_strerror(r));
    return 3;
  }
  printf("libuv_echo: listening on 127.0.0.1:%d (libuv %s)\n", port, uv_version_string());
  fflush(stdout);
  return uv_run(loop, UV_RUN_DEFAULT);
}
