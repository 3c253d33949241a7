/*
 * libevent_echo: a TCP echo server on libevent's bufferevents, the way libevent's
 * documentation writes one ("Fast portable non-blocking network programming with Libevent",
 * the evconnlistener echo server: evconnlistener_new_bind, bufferevent_socket_new, and a read
 * callback that moves the input buffer to the output buffer), for brrr's side-by-side
 * benchmark (bench/echo.sh).
 *
 *   libevent_echo PORT   listens on 127.0.0.1:PORT, prints "listening on 127.0.0.1:PORT"
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void echo_read_cb(struct bufferevent* bev, void* ctx) {
  (void)ctx;
  evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void echo_event_cb(struct bufferevent* bev, short events, void* ctx) {
  (void)ctx;
  if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(bev);
}

static void accept_conn_cb(struct evconnlistener* listener, evutil_socket_t fd, struct sockaddr* address,
                           int socklen, void* ctx) {
  (void)address;
  (void)socklen;
  (void)ctx;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct event_base* base = evconnlistener_get_base(listener);
  struct bufferevent* bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  bufferevent_setcb(bev, echo_read_cb, NULL, echo_event_cb, NULL);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void accept_error_cb(struct evconnlistener* listener, void* ctx) {
  (void)ctx;
  int err = EVUTIL_SOCKET_ERROR();
  fprintf(stderr, "accept error %d (%s)\n", err, evutil_socket_error_to_string(err));
  (void)listener;
}

int main(int argc, char** argv) {
  int port = argc > 1 ? atoi(argv[1]) : 5000;
  struct event_base* base = event_base_new();
  if (!base) return 3;
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(0x7f000001);
  sin.sin_port = htons((unsigned short)port);
  struct evconnlistener* listener =
      evconnlistener_new_bind(base, accept_conn_cb, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
                              (struct sockaddr*)&sin, sizeof sin);
  if (!listener) {
    perror("couldn't create listener");
    return 3;
  }
  evconnlistener_set_error_cb(listener, accept_error_cb);
  printf("libevent_echo: listening on 127.0.0.1:%d (libevent %s, %s)\n", port, event_get_version(),
         event_base_get_method(base));
  fflush(stdout);
  event_base_dispatch(base);
  return 0;
}
