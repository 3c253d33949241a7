/*
 * liburing_echo: a TCP echo server on io_uring through liburing, written the way io_uring's
 * performance-minded users write one (liburing's examples/proxy.c, by io_uring's author, and
 * his "io_uring and networking in 2023" notes), for brrr's side-by-side benchmark
 * (bench/echo.sh, bench/ab.sh). The strongest peer of brrr's io_uring backend is another
 * io_uring server, not a readiness one: a benchmark is only as honest as its strongest peer.
 *
 *   liburing_echo PORT   listens on 127.0.0.1:PORT (0: a free port the kernel picks) and prints
 *                        "liburing_echo: listening on 127.0.0.1:PORT (liburing, SETUP[, receive
 *                        bundles])"
 *
 * How:
 *   - One ring, set up SINGLE_ISSUER | DEFER_TASKRUN (Linux 6.1: the kernel runs completion
 *     work only when the loop asks for completions, never as an interruption of it), else
 *     COOP_TASKRUN (5.19), else plain; SUBMIT_ALL; a completion queue 4x the submission queue;
 *     the ring's own descriptor registered (io_uring_register_ring_fd, 5.18: no descriptor
 *     lookup per enter).
 *   - One io_uring_submit_and_wait(1) per loop turn: it submits everything the last turn queued
 *     and waits for a completion; then every completion there is handled and the queue
 *     advanced once.
 *   - A multishot accept on the listener (5.19) and one multishot receive per connection (6.0)
 *     into a ring of provided buffers (5.19) shared by every connection, as a bundle where the
 *     kernel has them (6.10: one receive fills as many buffers as the socket has data for;
 *     LIBURING_ECHO_BUNDLES=0 turns them off). The pool is brrr-echo's: 1,024 buffers of 16 KiB,
 *     on transparent huge pages. Only a hot part of it is on the ring (see buffer_ring below).
 *     No copy: a received buffer is sent as it is, and given back when its send completes.
 *   - One send in flight per connection (proxy.c's rule: a send the socket could not take at
 *     once is retried by the kernel later, and a second one could overtake it); the rest wait
 *     in a FIFO linked through the buffers' ids, so nothing is allocated per message. One
 *     buffer goes in a send, several (up to 16) in one sendmsg. Sends ask for MSG_WAITALL (the
 *     kernel goes on with a short send itself); one that still ends short is sent on from
 *     where it stopped.
 *   - Flow control: at 16 KiB received and not yet echoed (libevent_echo's and libuv_echo's
 *     high-water mark) the connection's receive is cancelled, and it is armed again once the
 *     echo is drained: a client that never reads holds the mark plus what was in flight. If
 *     the shared ring runs dry (-ENOBUFS ends a receive), the receive is armed again as soon
 *     as buffers come back.
 *   - TCP_NODELAY on every accepted connection.
 *   - EOF: the queued echo is sent first, then the write side is shut down and the connection
 *     closed; an error (a reset, a broken pipe) closes at once. A connection's requests are
 *     cancelled first, and it is freed only once none of them is left in the kernel. SIGTERM or
 *     SIGINT (a signalfd read on the ring) frees every connection, the ring and the buffers,
 *     and exits 0 (a leak checker sees nothing left).
 * Left out, and why: registered descriptors (proxy.c's -f1): they save each request's file
 * reference (fget) but add a table lookup of their own, which brrr's io_uring measured as no
 * gain (bench/JOURNAL.md, sixth run), and the connections would vanish from /proc/PID/fd, where
 * the peers' test counts them; send bundles (Linux 6.10, no helpers in Debian 12's liburing
 * 2.3): the gathered sendmsg does their job. Single-threaded: everything runs on the loop's
 * thread.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* The kernel's receive bundles (include/uapi/linux/io_uring.h, Linux 6.10), which Debian 12's
 * liburing 2.3 does not name yet. */
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif

enum {
  kSubmissionEntries = 4096,
  kBufferBytes = 16 * 1024,
  kBufferCount = 1024,             /* the pool: 16 MiB */
  kRingEntries = 2 * kBufferCount, /* a power of two; twice the pool, see ring_bid */
  kRingMin = 64,                   /* buffers on the ring at least ... */
  kRingPerRecv = 4,                /* ... and this many per armed receive */
  kBufferGroup = 0,
  kMaxGather = 16, /* queued buffers one sendmsg takes */
  kHighWaterBytes = 16 * 1024,
  kHugePage = 2 * 1024 * 1024,
};

/* What a request is, in the low bits of its user_data; the rest is its connection's address. */
enum {
  kAccept = 0,
  kSignal = 1,
  kRecv = 2,
  kSend = 3,
  kCancel = 4,
  kOpMask = 7,
};

typedef struct conn {
  int fd;
  int recv_armed;     /* its multishot receive is in the kernel */
  int recv_cancelled; /* ... and a cancel of it was asked for */
  int send_armed;     /* a send is in the kernel (one at a time) */
  int cancels;        /* cancel requests in the kernel */
  int paused;         /* over the high-water mark: no receive until the echo is drained */
  int starved;        /* the receive ended for want of buffers (on the starved list) */
  int eof;            /* the client has finished sending */
  int closing;        /* freed once none of its requests is in the kernel */
  int cancelled_all;  /* closing: every request of it was asked to end */
  size_t queued;      /* bytes received and not yet echoed, the send in flight's included */
  int head, tail;     /* the buffers to echo, by id, linked through buffer_next; -1: none */
  unsigned head_sent; /* bytes of the head buffer already sent */
  struct msghdr msg;  /* a gathered send's, while it is in the kernel */
  struct iovec iov[kMaxGather];
  struct conn* prev;
  struct conn* next;
  struct conn* next_starved;
} conn_t;

static struct io_uring ring;
static int bundles; /* receives are bundles (Linux 6.10) */
static char* buffers;
static int buffer_next[kBufferCount];
static unsigned buffer_len[kBufferCount];
/* The buffer ring holds only a hot part of the pool: the buffers given back last, as many as
 * the armed receives need (kRingPerRecv each, at least kRingMin). The ring is a FIFO, so with
 * the whole pool on it every receive would write to the buffer touched longest ago, 16 MiB
 * cycling through the cache. The rest of the pool waits on a stack. */
static struct io_uring_buf_ring* buffer_ring;
static int spare[kBufferCount]; /* the stack: the last one given back on top */
static int spare_count;
static unsigned ring_tail; /* entries ever put on the ring */
static int on_ring;        /* buffers on the ring now */
static int armed_recvs;
/* Which buffer went where on the ring, so that the buffers of a bundle, the entries after its
 * first, can be found: with twice as many entries as buffers, an entry is not written again
 * before its receive's completion is seen. */
static int ring_bid[kRingEntries];
static unsigned bid_position[kBufferCount];
static conn_t* conns;   /* every open connection, for the shutdown */
static conn_t* starved; /* connections waiting for buffers */
static int listener = -1;
static int accept_armed;
static int accept_paused; /* accept failed for want of descriptors: armed again at a close */
static int stopped;
static struct signalfd_siginfo siginfo;

static uint64_t tag(const conn_t* c, int op) { return (uint64_t)(uintptr_t)c | (uint64_t)op; }

/* A submission entry; when the queue is full, what is in it is submitted first. */
static struct io_uring_sqe* get_sqe(void) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (sqe == NULL) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  if (sqe == NULL) {
    fprintf(stderr, "liburing_echo: the submission queue stays full\n");
    exit(3);
  }
  return sqe;
}

static char* buffer_at(int bid) { return buffers + (size_t)bid * kBufferBytes; }

static void give_back(int bid) { spare[spare_count++] = bid; }

/* Tops the ring up from the stack to what the armed receives need. */
static void refill_ring(void) {
  int want = kRingPerRecv * armed_recvs;
  if (want < kRingMin) want = kRingMin;
  int added = 0;
  while (on_ring < want && spare_count > 0) {
    int bid = spare[--spare_count];
    io_uring_buf_ring_add(buffer_ring, buffer_at(bid), kBufferBytes, (unsigned short)bid,
                          io_uring_buf_ring_mask(kRingEntries), added);
    ring_bid[(ring_tail + (unsigned)added) % kRingEntries] = bid;
    bid_position[bid] = ring_tail + (unsigned)added;
    added++;
    on_ring++;
  }
  if (added > 0) {
    io_uring_buf_ring_advance(buffer_ring, added);
    ring_tail += (unsigned)added;
  }
}

static void arm_accept(void) {
  struct io_uring_sqe* sqe = get_sqe();
  io_uring_prep_multishot_accept(sqe, listener, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, tag(NULL, kAccept));
  accept_armed = 1;
}

static void arm_recv(conn_t* c) {
  struct io_uring_sqe* sqe = get_sqe();
  io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
  if (bundles) sqe->ioprio |= IORING_RECVSEND_BUNDLE;
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(sqe, tag(c, kRecv));
  c->recv_armed = 1;
  c->recv_cancelled = 0;
  armed_recvs++;
}

static void recv_ended(conn_t* c) {
  c->recv_armed = 0;
  armed_recvs--;
}

/* Sends the queued echo: a plain send for one buffer, a sendmsg gathering up to kMaxGather. */
static void send_queued(conn_t* c) {
  struct io_uring_sqe* sqe = get_sqe();
  const char* first = buffer_at(c->head) + c->head_sent;
  unsigned first_len = buffer_len[c->head] - c->head_sent;
  if (buffer_next[c->head] < 0) {
    io_uring_prep_send(sqe, c->fd, first, first_len, MSG_NOSIGNAL | MSG_WAITALL);
  } else {
    int n = 0;
    for (int bid = c->head; bid >= 0 && n < kMaxGather; bid = buffer_next[bid], n++) {
      c->iov[n].iov_base = n == 0 ? (void*)first : buffer_at(bid);
      c->iov[n].iov_len = n == 0 ? first_len : buffer_len[bid];
    }
    memset(&c->msg, 0, sizeof c->msg);
    c->msg.msg_iov = c->iov;
    c->msg.msg_iovlen = (size_t)n;
    io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL | MSG_WAITALL);
  }
  io_uring_sqe_set_data64(sqe, tag(c, kSend));
  c->send_armed = 1;
}

/* Asks the kernel to end the request tagged `target`, or with CANCEL_ALL every request on `fd`. */
static void cancel(conn_t* c, uint64_t target, int fd) {
  struct io_uring_sqe* sqe = get_sqe();
  if (fd >= 0) {
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  } else {
    io_uring_prep_cancel64(sqe, target, 0);
  }
  io_uring_sqe_set_data64(sqe, tag(c, kCancel));
  c->cancels++;
}

static void free_conn(conn_t* c) {
  for (int bid = c->head; bid >= 0; bid = buffer_next[bid]) give_back(bid);
  if (c->starved) {
    conn_t** link = &starved;
    while (*link != c) link = &(*link)->next_starved;
    *link = c->next_starved;
  }
  if (c->prev) c->prev->next = c->next; else conns = c->next;
  if (c->next) c->next->prev = c->prev;
  close(c->fd);
  free(c);
  if (accept_paused && !stopped) {
    accept_paused = 0;
    if (!accept_armed) arm_accept();
  }
}

/* Moves the connection on after a completion: the next send, the receive armed or cancelled
 * by the marks, the end after EOF, the free once closing has nothing left in the kernel. */
static void update(conn_t* c) {
  if (!c->closing) {
    if (!c->send_armed && c->head >= 0) send_queued(c);
    if (c->queued == 0) c->paused = 0;
    if (c->eof) {
      if (!c->send_armed) {
        shutdown(c->fd, SHUT_WR);
        c->closing = 1;
      }
    } else if (c->recv_armed) {
      if (c->paused && !c->recv_cancelled) {
        cancel(c, tag(c, kRecv), -1);
        c->recv_cancelled = 1;
      }
    } else if (!c->paused && !c->starved) {
      arm_recv(c);
    }
  }
  if (c->closing) {
    if ((c->recv_armed || c->send_armed) && !c->cancelled_all) {
      cancel(c, 0, c->fd);
      c->cancelled_all = 1;
    }
    if (!c->recv_armed && !c->send_armed && c->cancels == 0) free_conn(c);
  }
}

static void on_recv(conn_t* c, const struct io_uring_cqe* cqe) {
  if (!(cqe->flags & IORING_CQE_F_MORE)) recv_ended(c);
  if (cqe->res > 0) {
    /* The buffers filled: the one named, and for a bundle the ring entries after it, each
     * whole but the last. */
    int first = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    unsigned left = (unsigned)cqe->res;
    for (unsigned i = 0; left > 0; i++) {
      int bid = ring_bid[(bid_position[first] + i) % kRingEntries];
      unsigned len = left < kBufferBytes ? left : kBufferBytes;
      left -= len;
      on_ring--;
      buffer_len[bid] = len;
      buffer_next[bid] = -1;
      if (c->tail >= 0) buffer_next[c->tail] = bid; else c->head = bid;
      c->tail = bid;
    }
    c->queued += (size_t)cqe->res;
    if (c->queued >= kHighWaterBytes) c->paused = 1;
  } else if (cqe->res == 0) {
    c->eof = 1;
  } else if (cqe->res == -ENOBUFS) {
    if (!c->starved) {
      c->starved = 1;
      c->next_starved = starved;
      starved = c;
    }
  } else if (cqe->res != -ECANCELED) {
    c->closing = 1;
  }
  update(c);
}

static void on_send(conn_t* c, const struct io_uring_cqe* cqe) {
  c->send_armed = 0;
  if (cqe->res <= 0) {
    c->closing = 1; /* a reset, a broken pipe, or cancelled because closing */
  } else {
    unsigned done = (unsigned)cqe->res;
    c->queued -= done;
    while (done > 0) {
      int bid = c->head;
      unsigned rest = buffer_len[bid] - c->head_sent;
      if (done < rest) {
        c->head_sent += done;
        break;
      }
      done -= rest;
      c->head = buffer_next[bid];
      if (c->head < 0) c->tail = -1;
      c->head_sent = 0;
      give_back(bid);
    }
  }
  update(c);
}

static void on_accept(const struct io_uring_cqe* cqe) {
  if (!(cqe->flags & IORING_CQE_F_MORE)) accept_armed = 0;
  if (cqe->res >= 0) {
    int fd = cqe->res;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_t* c = calloc(1, sizeof *c);
    if (c == NULL) {
      close(fd);
    } else {
      c->fd = fd;
      c->head = c->tail = -1;
      c->next = conns;
      if (conns) conns->prev = c;
      conns = c;
      arm_recv(c);
    }
  } else if (cqe->res == -EMFILE || cqe->res == -ENFILE || cqe->res == -ENOBUFS || cqe->res == -ENOMEM) {
    fprintf(stderr, "liburing_echo: accept failed: %s; accepting again when a connection closes\n",
            strerror(-cqe->res));
    accept_paused = 1;
  }
  if (!accept_armed && !accept_paused && !stopped) arm_accept();
}

static void handle(const struct io_uring_cqe* cqe) {
  conn_t* c = (conn_t*)(uintptr_t)(cqe->user_data & ~(uint64_t)kOpMask);
  switch ((int)(cqe->user_data & kOpMask)) {
    case kAccept: on_accept(cqe); break;
    case kSignal: stopped = 1; break;
    case kRecv: on_recv(c, cqe); break;
    case kSend: on_send(c, cqe); break;
    case kCancel:
      c->cancels--;
      update(c);
      break;
  }
}

/* The ring with the best set-up this kernel takes; returns its name, or NULL. */
static const char* setup_ring(void) {
  static const struct {
    unsigned flags;
    const char* name;
  } kSetups[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL, "defer taskrun"},
      {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL, "coop taskrun"},
      {0, "plain"},
  };
  const char* bundles_env = getenv("LIBURING_ECHO_BUNDLES");
  int bundles_allowed = bundles_env == NULL || strcmp(bundles_env, "0") != 0;
  for (size_t i = 0; i < sizeof kSetups / sizeof kSetups[0]; i++) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    params.flags = kSetups[i].flags | IORING_SETUP_CQSIZE;
    params.cq_entries = 4 * kSubmissionEntries;
    if (io_uring_queue_init_params(kSubmissionEntries, &ring, &params) == 0) {
      io_uring_register_ring_fd(&ring); /* an optimisation: without it, every enter looks the ring up */
      bundles = bundles_allowed && (params.features & IORING_FEAT_RECVSEND_BUNDLE) != 0;
      return kSetups[i].name;
    }
  }
  return NULL;
}

/* The shared buffers and their ring (group kBufferGroup), every buffer in it. */
static int setup_buffers(void) {
  if (posix_memalign((void**)&buffers, kHugePage, (size_t)kBufferCount * kBufferBytes) != 0) return -ENOMEM;
  madvise(buffers, (size_t)kBufferCount * kBufferBytes, MADV_HUGEPAGE); /* advice only */
  size_t ring_bytes = kRingEntries * sizeof(struct io_uring_buf);
  void* mapped = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mapped == MAP_FAILED) return -errno;
  buffer_ring = mapped;
  io_uring_buf_ring_init(buffer_ring);
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)buffer_ring;
  reg.ring_entries = kRingEntries;
  reg.bgid = kBufferGroup;
  int rc = io_uring_register_buf_ring(&ring, &reg, 0);
  if (rc != 0) return rc;
  for (int bid = kBufferCount - 1; bid >= 0; bid--) give_back(bid);
  refill_ring();
  return 0;
}

/* After a turn's completions: tops the ring up, and arms the receives that waited for
 * buffers. */
static void end_turn(void) {
  refill_ring();
  if (on_ring == 0) return;
  conn_t* waiting = starved;
  starved = NULL;
  while (waiting) {
    conn_t* c = waiting;
    waiting = c->next_starved;
    c->starved = 0;
    update(c);
  }
}

int main(int argc, char** argv) {
  int port = argc > 1 ? atoi(argv[1]) : 5000;
  signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigprocmask(SIG_BLOCK, &signals, NULL);
  int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);

  const char* setup = setup_ring();
  if (setup == NULL) {
    fprintf(stderr, "liburing_echo: io_uring is not available here (an old kernel, or refused by a seccomp profile)\n");
    return 3;
  }
  int rc = setup_buffers();
  if (rc != 0) {
    fprintf(stderr, "liburing_echo: cannot set the provided buffer ring up (Linux 5.19): %s\n", strerror(-rc));
    return 3;
  }
  listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(0x7f000001);
  sin.sin_port = htons((unsigned short)port);
  if (signal_fd < 0 || listener < 0 || bind(listener, (struct sockaddr*)&sin, sizeof sin) != 0 ||
      listen(listener, 4096) != 0) {
    fprintf(stderr, "liburing_echo: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
    return 3;
  }
  struct sockaddr_in bound;
  socklen_t len = sizeof bound;
  getsockname(listener, (struct sockaddr*)&bound, &len);

  arm_accept();
  struct io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, signal_fd, &siginfo, sizeof siginfo, 0);
  io_uring_sqe_set_data64(sqe, tag(NULL, kSignal));
  printf("liburing_echo: listening on 127.0.0.1:%d (liburing, %s%s)\n", ntohs(bound.sin_port), setup,
         bundles ? ", receive bundles" : "");
  fflush(stdout);

  while (!stopped) {
    rc = io_uring_submit_and_wait(&ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      fprintf(stderr, "liburing_echo: io_uring_enter failed: %s\n", strerror(-rc));
      break;
    }
    unsigned head;
    unsigned seen = 0;
    struct io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      handle(cqe);
      seen++;
    }
    io_uring_cq_advance(&ring, seen);
    end_turn();
  }

  /* The ring's exit ends every request still in the kernel; then nothing refers to the
   * connections or the buffers. */
  io_uring_queue_exit(&ring);
  while (conns) {
    conn_t* c = conns;
    conns = c->next;
    close(c->fd);
    free(c);
  }
  munmap(buffer_ring, kRingEntries * sizeof(struct io_uring_buf));
  free(buffers);
  close(listener);
  close(signal_fd);
  return stopped ? 0 : 3;
}
