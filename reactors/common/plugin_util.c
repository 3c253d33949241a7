/* plugin_util.c: see plugin_util.h. */
#include "reactors/common/plugin_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime/reactor_abi.h"

pu_next pu_classify(uint32_t opcode, int error) {
  if (error == EAGAIN || error == EWOULDBLOCK) return PU_WAIT;
  if (error == EINTR) return PU_RETRY;
  if (opcode == BRRR_OP_ACCEPT &&
      (error == ECONNABORTED || error == EPROTO || error == EPERM)) {
    return PU_RETRY;
  }
  return PU_DONE;
}

int64_t pu_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* gettid is a system call: read once per thread, and again in a forked child, whose one
 * thread inherits the forking thread's copy (with the parent's id) but has an id of its own. */
static __thread pid_t cached_thread_id;

static void forget_thread_id(void) { cached_thread_id = 0; }

/* glibc drops the handler when the plugin is unloaded (it is registered with the plugin's
 * __dso_handle). */
__attribute__((constructor)) static void forget_thread_id_in_forked_children(void) {
  pthread_atfork(NULL, NULL, forget_thread_id);
}

pid_t pu_thread_id(void) {
  if (cached_thread_id == 0) cached_thread_id = (pid_t)syscall(SYS_gettid);
  return cached_thread_id;
}

int pu_fail(char* err, size_t err_size, const char* what, int error, const char* why) {
  if (err != NULL && err_size > 0) {
    if (why != NULL) {
      snprintf(err, err_size, "%s: %s (%s)", what, strerror(-error), why);
    } else {
      snprintf(err, err_size, "%s: %s", what, strerror(-error));
    }
  }
  return error;
}

void pu_abort(const char* format, ...) {
  char message[256];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  fprintf(stderr, "brrr reactor: %s\n", message); /* one write: stderr is unbuffered */
  abort();
}

void* pu_grow_fd_table(void* table, size_t* count, size_t item_size, int fd) {
  size_t grown = *count ? *count : 256;
  while (grown <= (size_t)fd) grown *= 2;
  uint8_t* items = realloc(table, grown * item_size);
  if (items == NULL) return NULL;
  memset(items + *count * item_size, 0, (grown - *count) * item_size);
  *count = grown;
  return items;
}

int pu_eventfd_signal(int fd) {
  uint64_t one = 1;
  for (;;) {
    if (write(fd, &one, sizeof one) == (ssize_t)sizeof one) return 0;
    if (errno == EINTR) continue;
    /* EAGAIN: the counter is saturated, so a wake-up is already pending. */
    return errno == EAGAIN ? 0 : -errno;
  }
}
